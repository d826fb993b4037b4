"""Plain paho clients standing in for buttons and centre systems in tests: written
independently of the bridge's own client, so the bridge is tested from outside."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    at: float

    @property
    def json(self) -> Any:
        return json.loads(self.payload)


class Peer:
    """A threaded paho client that records everything it receives."""

    def __init__(
        self,
        port: int,
        client_id: str,
        subscribe: tuple[str, ...] = (),
        username: str | None = None,
        password: str | None = None,
        persistent: bool = False,
    ) -> None:
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=not persistent
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: self._ready.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if subscribe:
            self.client.subscribe([(topic, 1) for topic in subscribe])
            if not self._ready.wait(5):
                raise TimeoutError("no SUBACK")

    def _on_message(self, _c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.received.append(Received(message.topic, bytes(message.payload), time.monotonic()))

    def publish(self, topic: str, payload: bytes | str | dict[str, Any], qos: int = 1) -> None:
        if isinstance(payload, dict):
            payload = json.dumps(payload)
        self.client.publish(topic, payload, qos=qos)

    def messages(self, match: Callable[[Received], bool] = lambda _: True) -> list[Received]:
        with self._lock:
            return [m for m in self.received if match(m)]

    async def wait_for(
        self, match: Callable[[Received], bool], count: int = 1, timeout: float = 10
    ) -> list[Received]:
        """The first `count` messages that match, waiting up to `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.messages(match)
            if len(found) >= count:
                return found[:count]
            await asyncio.sleep(0.02)
        raise TimeoutError(f"{len(self.messages(match))} of {count} messages within {timeout}s")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def on_topic(topic: str) -> Callable[[Received], bool]:
    return lambda m: m.topic == topic


def centre_state(alarm: int, **fields: object) -> Callable[[Received], bool]:
    """A centre message about `alarm` whose payload has these field values."""

    def match(m: Received) -> bool:
        if "/centre/" not in m.topic or not m.topic.endswith("/alarm"):
            return False
        body = m.json
        return bool(body["alarm"] == alarm and all(body.get(k) == v for k, v in fields.items()))

    return match
