"""A small HTTP control endpoint (``control.enabled``), bound to 127.0.0.1 by default.

    GET    /streams        the streams with state and counters (JSON)
    POST   /streams        add one: {"uri": "rtsp://...", "id": "cam7", ...any source key}
    DELETE /streams/ID     remove one (frames already decoded still reach the sinks)
    GET    /health         {"ok": true, "streams": N}

It has no authentication: keep it on loopback, or put an authenticating proxy in front.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import unquote

from ..errors import ConfigError, StreamTRTError
from .http import BackgroundServer, QuietHandler

log = logging.getLogger("streamtrt")
_MAX_BODY = 64 * 1024


class ControlServer:
    def __init__(self, pipeline: Any, host: str, port: int):
        self.pipeline = pipeline
        api = self

        class Handler(QuietHandler):
            def do_GET(self):
                if self.path.rstrip("/") == "/streams":
                    self._reply(200, api.pipeline.stream_status())
                elif self.path.rstrip("/") == "/health":
                    self._reply(200, {"ok": True, "streams": len(api.pipeline.stream_status())})
                else:
                    self._reply(404, {"error": "not found"})

            def do_POST(self):
                if self.path.rstrip("/") != "/streams":
                    return self._reply(404, {"error": "not found"})
                length = int(self.headers.get("Content-Length") or 0)
                if length > _MAX_BODY:
                    return self._reply(413, {"error": "body too large"})
                try:
                    body = json.loads(self.rfile.read(length) or b"null")
                except ValueError:
                    return self._reply(400, {"error": "body is not JSON"})
                if isinstance(body, str):
                    body = {"uri": body}
                if not isinstance(body, dict):
                    return self._reply(400, {"error": 'expected {"uri": ...}'})
                try:
                    sid = api.pipeline.add_source(body)
                except ConfigError as exc:
                    code = 409 if "already in use" in str(exc) else 400
                    return self._reply(code, {"error": str(exc)})
                except StreamTRTError as exc:
                    return self._reply(400, {"error": str(exc)})
                self._reply(201, {"id": sid})

            def do_DELETE(self):
                parts = self.path.strip("/").split("/")
                if len(parts) != 2 or parts[0] != "streams":
                    return self._reply(404, {"error": "not found"})
                try:
                    api.pipeline.remove_source(unquote(parts[1]))
                except ConfigError as exc:
                    return self._reply(404, {"error": str(exc)})
                self._reply(200, {"removed": unquote(parts[1])})

            def _reply(self, code: int, payload: Any) -> None:
                self.reply(code, json.dumps(payload).encode(), "application/json")

        self._http = BackgroundServer("control", Handler, host, port)
        self.address = self._http.address

    def close(self) -> None:
        self._http.close()
