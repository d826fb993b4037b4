"""paho clients for the benchmarks: devices, an observer that times the bridge's
answers (`AlarmProbe`), and the raw Mosquitto round trip used as a baseline."""

from __future__ import annotations

import json
import math
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from bench.figures import paced

Handler = Callable[[str, bytes, float], None]  # topic, payload, perf_counter() at arrival


class Client:
    """A paho client (MQTT 3.1.1, VERSION2 callbacks) on its own network thread, with
    TCP_NODELAY, connected and subscribed when the `with` block starts."""

    def __init__(
        self,
        port: int,
        client_id: str,
        on_message: Handler | None = None,
        subscriptions: Sequence[tuple[str, int]] = (),
        max_inflight: int = 100,
    ) -> None:
        self.port = port
        self.client_id = client_id
        self.subscriptions = list(subscriptions)
        self._on_message = on_message
        self._ready = threading.Event()
        self.paho = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv311
        )
        self.paho.max_inflight_messages_set(max_inflight)
        self.paho.max_queued_messages_set(0)
        self.paho.on_socket_open = nodelay
        self.paho.on_connect = self._connected
        self.paho.on_subscribe = self._subscribed
        self.paho.on_message = self._message

    def __enter__(self) -> Client:
        self.paho.connect("127.0.0.1", self.port, keepalive=30)
        self.paho.loop_start()
        if not self._ready.wait(10):
            self.__exit__(None, None, None)
            raise TimeoutError(f"MQTT client {self.client_id!r} did not get ready")
        return self

    def __exit__(
        self, kind: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.paho.disconnect()
        self.paho.loop_stop()

    def publish(self, topic: str, payload: bytes | str, qos: int = 1) -> None:
        info = self.paho.publish(topic, payload, qos=qos)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise ConnectionError(f"publish on {topic}: {paho.error_string(info.rc)}")

    def _connected(self, client: paho.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            return
        if self.subscriptions:
            client.subscribe(self.subscriptions)
        else:
            self._ready.set()

    def _subscribed(self, _c: Any, _u: Any, _mid: int, _reasons: Any, _p: Any) -> None:
        self._ready.set()

    def _message(self, _c: Any, _u: Any, message: paho.MQTTMessage) -> None:
        at = time.perf_counter()
        if self._on_message is not None:
            self._on_message(message.topic, bytes(message.payload), at)


def nodelay(_client: Any, _userdata: Any, sock: Any) -> None:
    # paho does not set TCP_NODELAY itself; Nagle would add up to 40 ms per small packet.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


@dataclass(frozen=True, slots=True)
class Press:
    device: str
    sent: float
    acked: float | None
    alarm: int | None


class AlarmProbe:
    """Presses buttons as devices and notes when each press is answered `received`
    on its device's ack topic, and every alarm message the centres get."""

    def __init__(self, port: int) -> None:
        self._lock = threading.Lock()
        self._sent: dict[str, tuple[str, float]] = {}  # message id → (device, time)
        self._acks: dict[str, tuple[float, int]] = {}  # message id → (time, alarm)
        self._centre: list[tuple[float, int, int]] = []  # (time, alarm, presses)
        self._seq = 0
        self._all_acked = threading.Event()
        self.devices = Client(port, "bench-devices", max_inflight=0)
        self.observer = Client(
            port, "bench-observer", self._heard, [("xl/dev/+/ack", 1), ("xl/centre/+/alarm", 1)]
        )

    def __enter__(self) -> AlarmProbe:
        self.observer.__enter__()
        try:
            self.devices.__enter__()
        except BaseException:
            self.observer.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.devices.__exit__(None, None, None)
        self.observer.__exit__(None, None, None)

    def press(self, device: str, tag: str) -> str:
        """Publish one alarm (QoS 1) with a new message id; return the id."""
        self._seq += 1
        message_id = f"{tag}-{self._seq}"
        payload = json.dumps({"id": message_id, "kind": "panic"})
        with self._lock:
            self._all_acked.clear()
            self._sent[message_id] = (device, time.perf_counter())
        self.devices.publish(f"xl/dev/{device}/alarm", payload, qos=1)
        return message_id

    def wait_acked(self, timeout: float) -> bool:
        """Wait until every press so far is answered (or `timeout` passes)."""
        with self._lock:
            if len(self._acks) >= len(self._sent):
                return True
        return self._all_acked.wait(timeout)

    def presses(self, ids: Sequence[str]) -> list[Press]:
        with self._lock:
            found = []
            for message_id in ids:
                device, sent = self._sent[message_id]
                acked, alarm = self._acks.get(message_id, (None, None))
                found.append(Press(device, sent, acked, alarm))
            return found

    def centre(self) -> list[tuple[float, int, int]]:
        """Every alarm message the centres got so far: (time, alarm id, presses)."""
        with self._lock:
            return list(self._centre)

    def _heard(self, topic: str, payload: bytes, at: float) -> None:
        body = json.loads(payload)
        with self._lock:
            if topic.endswith("/ack"):
                if body.get("state") == "received" and body["id"] not in self._acks:
                    self._acks[body["id"]] = (at, body["alarm"])
                    if len(self._acks) >= len(self._sent):
                        self._all_acked.set()
            else:
                self._centre.append((at, body["alarm"], body["presses"]))


def mosquitto_round_trip(
    port: int, count: int, rate: float | None, warmup: int = 20
) -> tuple[list[float], float]:
    """The raw baseline: QoS 1 messages between two paho clients through Mosquitto, at
    `rate` per second (None: as fast as possible), after `warmup` uncounted ones.
    Returns each message's seconds from publish to arrival, and the seconds from the
    first counted publish to the last arrival."""
    arrived: dict[int, float] = {}
    done = threading.Event()
    total = warmup + count

    def heard(_topic: str, payload: bytes, at: float) -> None:
        arrived[int(payload)] = at
        if len(arrived) == total:
            done.set()

    sent: dict[int, float] = {}
    with (
        Client(port, "bench-raw-sub", heard, [("bench/raw", 1)]),
        Client(port, "bench-raw-pub", max_inflight=0) as publisher,
    ):
        for i in range(warmup):
            sent[i] = time.perf_counter()
            publisher.publish("bench/raw", str(i), qos=1)
            time.sleep(0.005)
        for i in paced(count, rate):
            sent[warmup + i] = time.perf_counter()
            publisher.publish("bench/raw", str(warmup + i), qos=1)
        done.wait(30)
    counted = [i for i in sorted(arrived) if i >= warmup]
    if not counted:
        return [], math.nan
    span = max(arrived[i] for i in counted) - sent[warmup]
    return [arrived[i] - sent[i] for i in counted], span
