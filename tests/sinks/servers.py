"""Real servers for sink tests: a mosquitto broker we can stop and restart, a webhook receiver."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """mosquitto on 127.0.0.1:port; ``stop()``/``start()`` simulate an outage."""

    def __init__(self, workdir: Path, users: dict[str, str] | None = None):
        self.port = free_port()
        self.conf = workdir / "mosquitto.conf"
        # Persistence keeps the subscriber's session (its subscription and the QoS 1 messages queued
        # for it) across a restart: records a sink delivers before the subscriber is back still reach it.
        lines = [f"listener {self.port} 127.0.0.1", "persistence true", f"persistence_location {workdir}/",
                 "max_queued_messages 100000", "log_dest none"]
        if os.geteuid() == 0:
            lines.append("user root")  # else mosquitto drops to its own user, which cannot read pytest's tmp dirs
        if users:
            pw = workdir / "passwd"
            pw.write_text("")
            for user, password in users.items():
                subprocess.run([shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd", "-b", str(pw), user,
                                password], check=True, capture_output=True)
            lines += ["allow_anonymous false", f"password_file {pw}"]
        else:
            lines.append("allow_anonymous true")
        self.conf.write_text("\n".join(lines) + "\n")
        self.proc = None

    def start(self) -> None:
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


class Subscriber:
    """Collects every message on a topic (QoS 1), reconnecting after broker outages; a persistent
    session, so that messages published while it reconnects wait for it at the broker."""

    def __init__(self, port: int, topic: str, username=None, password=None):
        import paho.mqtt.client as mqtt

        self.messages: list[dict] = []
        self.lock = threading.Lock()
        self.ready = threading.Event()
        c = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id=f"sub-{port}-{topic}",
                        clean_session=False)
        if username:
            c.username_pw_set(username, password)
        c.reconnect_delay_set(min_delay=1, max_delay=2)

        def on_connect(client, userdata, flags, reason, props):
            if not reason.is_failure:
                client.subscribe(topic, qos=1)

        def on_subscribe(*args):
            self.ready.set()

        def on_message(client, userdata, msg):
            with self.lock:
                self.messages.append(json.loads(msg.payload))

        c.on_connect, c.on_subscribe, c.on_message = on_connect, on_subscribe, on_message
        c.connect_async("127.0.0.1", port)
        c.loop_start()
        self.client = c
        self.ready.wait(10)

    def ids(self) -> set[str]:
        with self.lock:
            return {m["message_id"] for m in self.messages}

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class Webhook:
    """Answers 500 to the first ``fail`` requests, then 200; keeps bodies and headers."""

    def __init__(self, fail: int = 0, port: int = 0):
        self.fail = fail
        self.requests: list[tuple[dict, bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with outer.lock:
                    failing = outer.fail > 0
                    if failing:
                        outer.fail -= 1
                    else:
                        outer.requests.append((dict(self.headers), body))
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def records(self) -> list[dict]:
        with self.lock:
            return [r for _, body in self.requests for r in json.loads(body)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
