"""A small threaded HTTP server for the metrics and control endpoints (loopback by default)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ..errors import StreamTRTError


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that writes no access log and replies with one body."""

    def reply(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class BackgroundServer:
    """Serves ``handler`` on ``host:port`` from a daemon thread until :meth:`close`."""

    def __init__(self, what: str, handler: type, host: str, port: int):
        try:
            self.server = ThreadingHTTPServer((host, port), handler)
        except OSError as exc:
            raise StreamTRTError(f"{what}: cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        self.address = self.server.server_address
        self._thread = threading.Thread(target=self.server.serve_forever, name=f"streamtrt-{what}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5.0)
