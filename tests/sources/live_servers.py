"""Real servers for the live-source tests: GStreamer's RTSP server (a subprocess of the system
Python, which has Debian's GObject bindings) and a multipart MJPEG server over HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

SYSTEM_PYTHON = "/usr/bin/python3"
RTSP_SCRIPT = Path(__file__).with_name("rtsp_server.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rtsp_server_missing() -> Optional[str]:
    """Why the RTSP server cannot run here, or None."""
    if not os.path.exists(SYSTEM_PYTHON):
        return f"{SYSTEM_PYTHON} not found"
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0'); "
         "from gi.repository import GstRtspServer, Gst; Gst.init(None); "
         "assert Gst.ElementFactory.find('rtph264pay') and Gst.ElementFactory.find('h264parse')"],
        capture_output=True, text=True)
    if probe.returncode != 0:
        return ("GStreamer RTSP server not installed (apt-get install python3-gi gir1.2-gst-rtsp-server-1.0 "
                "gstreamer1.0-plugins-good gstreamer1.0-plugins-bad; .ci/run does this)")
    return None


class RtspServer:
    """``rtsp://127.0.0.1:PORT/cam`` serving ``clip`` in real time, from its start for each client."""

    def __init__(self, clip: Path, port: Optional[int] = None):
        self.clip = clip
        self.port = port or free_port()
        self.proc: Optional[subprocess.Popen] = None
        self.url = f"rtsp://127.0.0.1:{self.port}/cam"

    def start(self) -> float:
        """Start and wait until it listens; returns time.monotonic() at that moment."""
        self.proc = subprocess.Popen([SYSTEM_PYTHON, str(RTSP_SCRIPT), str(self.port), str(self.clip)],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline().strip()
        if line != "ready":
            self.kill()
            raise RuntimeError(f"RTSP server did not start: {line!r}")
        return time.monotonic()

    def kill(self) -> None:
        """SIGKILL: the server vanishes mid-stream without a goodbye."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)
        if self.proc is not None and self.proc.stdout:
            self.proc.stdout.close()
        self.proc = None

    def __enter__(self) -> "RtspServer":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.kill()


class MjpegServer:
    """``http://127.0.0.1:PORT/video.mjpg``: multipart JPEG frames at ``fps`` (ignoring any declared rate)."""

    def __init__(self, frames: list[np.ndarray], fps: float, count: Optional[int] = None):
        jpegs = [cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes() for f in frames]
        self.sent = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                t0 = time.monotonic()
                i = 0
                try:
                    while count is None or i < count:
                        delay = t0 + i / fps - time.monotonic()
                        if delay > 0:
                            time.sleep(delay)
                        data = jpegs[i % len(jpegs)]
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\n"
                                         + f"Content-Length: {len(data)}\r\n\r\n".encode() + data + b"\r\n")
                        server.sent += 1
                        i += 1
                    self.wfile.write(b"--frame--\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/video.mjpg"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "MjpegServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def write_camera_clip(path, frames: int):
    """``frames`` of the sample at 10 fps, half size (384x288), H.264 with a keyframe every second
    and no B-frames, like an IP camera; written to ``path``, which is returned."""
    import av
    import numpy as np

    from tests.conftest import SAMPLES, decode_frames

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10, options={"g": "10", "keyint_min": "10", "sc_threshold": "0",
                                                              "preset": "veryfast", "tune": "zerolatency"})
        stream.width, stream.height, stream.pix_fmt = 384, 288, "yuv420p"
        for img in decode_frames(SAMPLES / "vtest.mp4", frames):
            small = np.ascontiguousarray(img[::2, ::2])
            for packet in stream.encode(av.VideoFrame.from_ndarray(small, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path
