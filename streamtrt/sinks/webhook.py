"""Webhooks: batched JSON POSTs through the durable outbox, with retries and an optional
HMAC-SHA256 signature (``X-Streamtrt-Signature: sha256=<hex>`` over the body, keyed by
``STREAMTRT_WEBHOOK_SECRET``)."""

from __future__ import annotations

import hashlib
import hmac
import os
import socket
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from ..version import __version__
from ..errors import SinkError
from .delivery import DeliveryError, OutboxSink, outbox_options, seconds_option
from .registry import SinkKind, SinkSpec, register_sink_kind

_RETRYABLE = {408, 425, 429}


class WebhookSink(OutboxSink):
    batch_size = 50

    def __init__(self, uri: str, timeout_s: float = 10.0, **kwargs):
        super().__init__(uri, **kwargs)
        parts = urlsplit(uri)
        if not parts.hostname:
            raise SinkError(f"sink {self.display}: missing host")
        self.timeout_s = timeout_s
        try:
            self.address = (parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
        except ValueError:
            raise SinkError(f"sink {self.display}: invalid port") from None
        self.secret = os.environ.get("STREAMTRT_WEBHOOK_SECRET", "").encode() or None

    def connect(self) -> None:
        pass  # HTTP needs no connection up front; the first POST shows whether the server is there

    def deliver(self, payloads: list[bytes]) -> None:
        body = b"[" + b",".join(payloads) + b"]"
        headers = {"Content-Type": "application/json", "User-Agent": f"streamtrt/{__version__}"}
        if self.secret:
            headers["X-Streamtrt-Signature"] = "sha256=" + hmac.new(self.secret, body, hashlib.sha256).hexdigest()
        request = urllib.request.Request(self.uri, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            permanent = 400 <= exc.code < 500 and exc.code not in _RETRYABLE
            raise DeliveryError(f"HTTP {exc.code} {exc.reason}", permanent=permanent) from None
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DeliveryError(f"cannot reach the server: {reason}") from None

    def reachable(self) -> bool:
        """A TCP connection to the server succeeds (behind a proxy it may not: then only the
        backoff paces the retries)."""
        try:
            socket.create_connection(self.address, timeout=1.0).close()
            return True
        except OSError:
            return False


def open_webhook(spec: SinkSpec) -> WebhookSink:
    timeout = seconds_option(spec, "timeout")
    return WebhookSink(spec.target, **outbox_options(spec), **({} if timeout is None else {"timeout_s": timeout}))


register_sink_kind(SinkKind("webhook", open_webhook, prefix=False, schemes=("http", "https"),
                            options=("outbox", "drain", "timeout"), keeps_query=True, usage="http(s)://URL (a webhook)"))
