"""MQTT: one message per record, QoS 1, through the durable outbox.

``mqtt://host:port/topic`` or ``mqtts://`` for TLS (``?ca=/path/ca.pem`` for a private CA).
Credentials come from ``STREAMTRT_MQTT_USERNAME`` / ``STREAMTRT_MQTT_PASSWORD`` (or the URI's
user:password, which is never logged).

While the broker is away, paho reconnects every 1-2 s (a TCP connection attempt, cheap for a
broker) and a successful connection wakes the delivery worker, so pending records flow again
within about 2 s of the broker's return, however long the outage.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Optional
from urllib.parse import parse_qs, unquote, urlsplit

from ..errors import SinkError
from .delivery import DeliveryError, OutboxSink, outbox_options
from .registry import SinkKind, register_sink_kind

_CONNECT_WAIT_S = 5.0
_ACK_WAIT_S = 10.0  # for the PUBACKs of one batch
_RECONNECT_S = (1, 2)  # paho's reconnect delay, min and max: the probe of an absent broker


class MqttSink(OutboxSink):
    batch_size = 64

    def __init__(self, uri: str, **kwargs):
        super().__init__(uri, **kwargs)
        parts = urlsplit(uri)
        self.tls = parts.scheme == "mqtts"
        self.host = parts.hostname
        self.topic = unquote(parts.path.lstrip("/"))
        if not self.host:
            raise SinkError(f"sink {self.display}: missing broker host (mqtt://host:port/topic)")
        if not self.topic or "#" in uri or "+" in self.topic:
            raise SinkError(f"sink {self.display}: need a topic without wildcards (mqtt://host:port/topic)")
        try:
            self.port = parts.port or (8883 if self.tls else 1883)
        except ValueError:
            raise SinkError(f"sink {self.display}: invalid port") from None
        self.username = os.environ.get("STREAMTRT_MQTT_USERNAME") or (unquote(parts.username) if parts.username else None)
        self.password = os.environ.get("STREAMTRT_MQTT_PASSWORD") or (unquote(parts.password) if parts.password else None)
        self.ca = parse_qs(parts.query).get("ca", [None])[0]
        self._client = None
        self._connected = threading.Event()
        self._refused: Optional[str] = None
        self.reconnects = 0

    def connect(self) -> None:
        try:
            import paho.mqtt.client as mqtt
        except ImportError:
            raise SinkError("MQTT sinks need paho-mqtt (pip install paho-mqtt)") from None
        client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
                             client_id=f"streamtrt-{os.getpid()}-{id(self) & 0xFFFF:x}", protocol=mqtt.MQTTv311)
        if self.username:
            client.username_pw_set(self.username, self.password)
        if self.tls:
            client.tls_set(ca_certs=self.ca)
        client.reconnect_delay_set(min_delay=_RECONNECT_S[0], max_delay=_RECONNECT_S[1])
        client.max_queued_messages_set(self.batch_size * 4)

        def on_connect(_c, _u, _flags, reason, _props):
            if reason.is_failure:
                self._refused = str(reason)
                self._connected.clear()
            else:
                if self._connected.is_set() is False and self._refused is None and self.delivered:
                    self.reconnects += 1
                self._refused = None
                self._connected.set()
                self.retry_now()

        def on_disconnect(_c, _u, _flags, _reason, _props):
            self._connected.clear()

        client.on_connect = on_connect
        client.on_disconnect = on_disconnect
        self._client = client
        try:
            client.connect_async(self.host, self.port, keepalive=30)
        except (OSError, ValueError) as exc:
            raise SinkError(f"sink {self.display}: {exc}") from None
        client.loop_start()
        self._connected.wait(_CONNECT_WAIT_S)
        if self._refused and ("authori" in self._refused.lower() or "password" in self._refused.lower()):
            self.disconnect()
            raise SinkError(f"sink {self.display}: the broker refused the connection: {self._refused} "
                            "(check STREAMTRT_MQTT_USERNAME / STREAMTRT_MQTT_PASSWORD)")
        if not self._connected.is_set():
            self.last_error = f"broker {self.host}:{self.port} unreachable"
            import logging

            logging.getLogger("streamtrt").warning("%s: broker not reachable yet; records wait in the outbox",
                                                   self.display)

    def deliver(self, payloads: list[bytes]) -> None:
        if not self._connected.is_set():
            raise DeliveryError(self._refused or f"not connected to {self.host}:{self.port}")
        infos = [self._client.publish(self.topic, p, qos=1) for p in payloads]
        deadline = time.monotonic() + _ACK_WAIT_S
        for info in infos:
            try:
                info.wait_for_publish(max(0.0, deadline - time.monotonic()))
            except (RuntimeError, ValueError) as exc:  # raised when the client lost its connection
                raise DeliveryError(f"publish failed: {exc}") from None
            if not info.is_published():
                raise DeliveryError("no PUBACK from the broker")

    def reachable(self) -> bool:
        return self._connected.is_set()

    def receiver_state(self) -> str:
        if self._connected.is_set():
            return "broker connected"
        return f"broker not connected ({self._refused + ', ' if self._refused else ''}retrying)"

    def disconnect(self) -> None:
        if self._client is not None:
            self._client.loop_stop()
            try:
                self._client.disconnect()
            except Exception:
                pass
            self._client = None


register_sink_kind(SinkKind("mqtt", lambda spec: MqttSink(spec.target, **outbox_options(spec)), prefix=False,
                            schemes=("mqtt", "mqtts"), options=("outbox", "drain"), keeps_query=True,
                            usage="mqtt://HOST[:PORT]/TOPIC (mqtts:// with TLS)"))
