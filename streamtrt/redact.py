"""Hiding credentials in text that may be logged, printed or recorded (URIs of sources and sinks,
error messages that quote them). Product rule: credentials never reach a log."""

from __future__ import annotations

import re

_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")


def redact(text: str) -> str:
    """Hide credentials in every ``scheme://user:pass@host`` found in ``text`` (``scheme://***@host``)."""
    return _CREDENTIALS.sub(lambda m: f"{m.group('scheme')}***@", text)
