"""The paho seam: the only module that imports paho-mqtt.

paho runs on the asyncio event loop itself (as aiomqtt does): its socket is watched
with `add_reader`/`add_writer`, so every callback runs on the loop thread and no lock
or thread hop sits between a PUBLISH arriving and the code that stores it. Only the
blocking TCP/TLS connect runs in a worker thread. Reconnection uses jittered
exponential backoff; the session is persistent (clean_start=False with a session
expiry), so the broker queues alarms for us while we are away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import AnyUrl

from xueliang.config import MqttSettings

log = logging.getLogger(__name__)

Protocol = Literal["5", "3.1.1"]
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 30.0
MISC_INTERVAL_S = 1.0


class NotConnected(ConnectionError):
    """The broker connection is down; the message was not handed to the broker."""


@dataclass(frozen=True, slots=True)
class Broker:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False

    @classmethod
    def from_url(cls, url: AnyUrl | str) -> Broker:
        url = AnyUrl(str(url)) if isinstance(url, str) else url
        assert url.host is not None
        tls = url.scheme == "mqtts"
        return cls(
            host=url.host,
            port=url.port or (8883 if tls else 1883),
            username=url.username,
            password=url.password,
            tls=tls,
        )

    @classmethod
    def for_settings(cls, mqtt: MqttSettings) -> Broker:
        """The configured broker, or the embedded demo broker on this machine."""
        if mqtt.url is not None:
            return cls.from_url(mqtt.url)
        return cls("127.0.0.1", mqtt.embedded_port)

    def __str__(self) -> str:
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Message:
    """One PUBLISH received; `connection` tells which connection it came on, so it
    is never acknowledged on a later one (packet ids are per connection)."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    mid: int
    connection: int
    received: float  # time.perf_counter() at arrival


@dataclass(frozen=True, slots=True)
class Will:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


class MqttClient:
    """One broker connection kept alive by `run()`; publish/subscribe/ack from the loop."""

    def __init__(
        self,
        broker: Broker,
        *,
        client_id: str,
        protocol: Protocol = "5",
        persistent: bool = True,
        session_expiry_s: int = 7 * 86_400,
        manual_ack: bool = False,
        will: Will | None = None,
        subscriptions: list[tuple[str, int]] | None = None,
        on_message: Callable[[Message], None] | None = None,
        on_connected: Callable[[], None] | None = None,
        keepalive_s: int = 30,
        read_batch: int = 200,
    ) -> None:
        self.broker = broker
        self.client_id = client_id
        self.subscriptions = list(subscriptions or [])
        self.connected = asyncio.Event()
        self.connection = 0
        self._on_message = on_message
        self._on_connected = on_connected
        self._loop = asyncio.get_running_loop()
        self._protocol = protocol
        self._persistent = persistent
        self._session_expiry_s = session_expiry_s
        self._keepalive_s = keepalive_s
        self._read_batch = read_batch
        self._pending: dict[int, asyncio.Future[None]] = {}
        self._connack: asyncio.Future[ReasonCode] | None = None
        self._suback: asyncio.Future[None] | None = None
        self._lost: asyncio.Event = asyncio.Event()
        self._leaving = False
        self._up = False  # CONNACK received on the current socket
        self._paho = self._make_client(manual_ack, will)

    # --- public --------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, and reconnect whenever the connection drops, until cancelled."""
        attempt = 0
        try:
            while True:
                try:
                    await self._connect_once()
                    attempt = 0
                    await self._lost.wait()
                except (OSError, NotConnected, TimeoutError) as e:
                    log.warning("MQTT %s: %s", self.broker, e)
                delay = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2**attempt)
                attempt += 1
                # Full jitter: thousands of clients must not reconnect in step.
                await asyncio.sleep(random.uniform(delay / 2, delay))  # noqa: S311
        finally:
            self._shutdown_socket()

    def publish(
        self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False
    ) -> asyncio.Future[None]:
        """Hand a message to the broker. The future resolves on PUBACK (QoS 1) or once
        written (QoS 0); it survives a reconnect, since paho resends in-flight messages."""
        if not self._up:
            raise NotConnected(f"not connected to {self.broker}")
        info = self._paho.publish(topic, payload, qos=qos, retain=retain)
        future: asyncio.Future[None] = self._loop.create_future()
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise NotConnected(f"publish to {self.broker} failed: {paho.error_string(info.rc)}")
        if qos == 0:
            future.set_result(None)
        else:
            self._pending[info.mid] = future
        return future

    def ack(self, message: Message) -> bool:
        """Send the PUBACK of a message received with manual acks. False when the
        connection it came on is gone: the broker will deliver it again."""
        if message.qos == 0:
            return True
        if message.connection != self.connection or not self._up:
            return False
        self._paho.ack(message.mid, message.qos)
        return True

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    async def disconnect(self) -> None:
        """Leave cleanly (the broker then does not publish our will)."""
        if self.connected.is_set():
            self._leaving = True
            self._paho.disconnect()
            await asyncio.sleep(0)

    # --- connection ----------------------------------------------------------------

    def _make_client(self, manual_ack: bool, will: Will | None) -> paho.Client:
        version = paho.MQTTv5 if self._protocol == "5" else paho.MQTTv311
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=version,
            clean_session=None if version == paho.MQTTv5 else not self._persistent,
            manual_ack=manual_ack,
        )
        if self.broker.username is not None:
            client.username_pw_set(self.broker.username, self.broker.password)
        if self.broker.tls:
            client.tls_set()
        if will is not None:
            client.will_set(will.topic, will.payload, qos=will.qos, retain=will.retain)
        client.max_inflight_messages_set(100)
        client.max_queued_messages_set(0)
        client.on_connect = self._handle_connect
        client.on_disconnect = self._handle_disconnect
        client.on_message = self._handle_message
        client.on_publish = self._handle_publish
        client.on_subscribe = self._handle_subscribe
        client.on_socket_open = self._socket_open
        client.on_socket_close = self._socket_close
        client.on_socket_register_write = self._socket_register_write
        client.on_socket_unregister_write = self._socket_unregister_write
        return client

    async def _connect_once(self) -> None:
        self._lost.clear()
        self._connack = self._loop.create_future()
        properties = None
        clean_start: bool | Literal[3] = paho.MQTT_CLEAN_START_FIRST_ONLY
        if self._protocol == "5":
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            if self._persistent:
                properties.SessionExpiryInterval = self._session_expiry_s
            clean_start = not self._persistent
        self._paho.connect_async(
            self.broker.host,
            self.broker.port,
            keepalive=self._keepalive_s,
            clean_start=clean_start,
            properties=properties,
        )
        # The TCP (and TLS) handshake blocks: a worker thread does it.
        rc = await self._loop.run_in_executor(None, self._paho.reconnect)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise NotConnected(paho.error_string(rc))
        misc = self._loop.create_task(self._misc(), name=f"mqtt-misc-{self.client_id}")
        try:
            async with asyncio.timeout(15):
                reason = await self._connack
        except TimeoutError:
            misc.cancel()
            self._shutdown_socket()
            raise NotConnected(f"no CONNACK from {self.broker}") from None
        if reason.is_failure:
            misc.cancel()
            self._shutdown_socket()
            raise NotConnected(f"{self.broker} refused the connection: {reason}")
        self._misc_task = misc
        if self.subscriptions:
            # Ready means subscribed: nothing published after `connected` is missed.
            self._suback = self._loop.create_future()
            self._paho.subscribe(self.subscriptions)
            try:
                async with asyncio.timeout(15):
                    await self._suback
            except TimeoutError:
                self._shutdown_socket()
                raise NotConnected(f"no SUBACK from {self.broker}") from None
        self.connected.set()
        log.info("MQTT connected to %s as %s", self.broker, self.client_id)
        if self._on_connected is not None:
            self._on_connected()

    async def _misc(self) -> None:
        """Keepalive pings and timeouts; the socket callbacks do the rest."""
        while True:
            await asyncio.sleep(MISC_INTERVAL_S)
            if self._paho.loop_misc() != MQTTErrorCode.MQTT_ERR_SUCCESS:
                self._connection_lost("keepalive")
                return

    def _shutdown_socket(self) -> None:
        task = getattr(self, "_misc_task", None)
        if task is not None:
            task.cancel()
        sock = self._paho.socket()
        if sock is not None:
            self._forget_socket(sock)
            with contextlib.suppress(OSError, ValueError):
                self._paho.disconnect()
        self._up = False
        self.connected.clear()

    def _connection_lost(self, why: str) -> None:
        if self.connected.is_set() and not self._leaving:
            log.warning("MQTT connection to %s lost (%s)", self.broker, why)
        self._up = False
        self.connected.clear()
        self._lost.set()

    # --- paho callbacks (all on the loop thread, except socket_open) ----------------

    def _handle_connect(
        self, _c: Any, _u: Any, _flags: Any, reason: ReasonCode, _props: Any
    ) -> None:
        # A resumed session's queued messages may follow in the same read: they must
        # already carry this connection's number, and be acknowledgeable at once.
        if not reason.is_failure:
            self.connection += 1
            self._up = True
        if self._connack is not None and not self._connack.done():
            self._connack.set_result(reason)

    def _handle_disconnect(
        self, _c: Any, _u: Any, _flags: Any, reason: ReasonCode, _props: Any
    ) -> None:
        self._connection_lost(str(reason))

    def _handle_message(self, _c: Any, _u: Any, message: paho.MQTTMessage) -> None:
        if self._on_message is None:
            return
        self._on_message(
            Message(
                topic=message.topic,
                payload=bytes(message.payload),
                qos=message.qos,
                retain=bool(message.retain),
                mid=message.mid,
                connection=self.connection,
                received=time.perf_counter(),
            )
        )

    def _handle_publish(self, _c: Any, _u: Any, mid: int, _reason: ReasonCode, _props: Any) -> None:
        future = self._pending.pop(mid, None)
        if future is not None and not future.done():
            future.set_result(None)

    def _handle_subscribe(self, _c: Any, _u: Any, _mid: int, reasons: Any, _props: Any) -> None:
        for reason in reasons:
            if reason.is_failure:
                log.error("MQTT %s refused a subscription: %s", self.broker, reason)
        if self._suback is not None and not self._suback.done():
            self._suback.set_result(None)

    def _socket_open(self, _c: Any, _u: Any, sock: Any) -> None:
        # Called from the worker thread that connects.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._loop.call_soon_threadsafe(self._loop.add_reader, sock, self._read)

    def _socket_close(self, _c: Any, _u: Any, sock: Any) -> None:
        self._call_on_loop(self._forget_socket, sock)

    def _socket_register_write(self, _c: Any, _u: Any, sock: Any) -> None:
        self._call_on_loop(self._loop.add_writer, sock, self._write)

    def _socket_unregister_write(self, _c: Any, _u: Any, sock: Any) -> None:
        self._call_on_loop(self._loop.remove_writer, sock)

    def _read(self) -> None:
        # paho's loop_read() handles one packet per call (its max_packets is ignored),
        # so a burst of heartbeats would cost one event-loop pass each. Drain what the
        # socket already holds instead, through the same internal step loop_read uses;
        # `read_batch` packets at most, then other sockets get their turn.
        for _ in range(self._read_batch):
            rc = self._paho._packet_read()
            if rc == MQTTErrorCode.MQTT_ERR_AGAIN:
                return
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                self._paho._loop_rc_handle(rc)
                self._connection_lost("read")
                return

    def _write(self) -> None:
        if self._paho.loop_write() != MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._connection_lost("write")

    def _forget_socket(self, sock: Any) -> None:
        self._loop.remove_reader(sock)
        self._loop.remove_writer(sock)

    def _call_on_loop(self, func: Callable[..., Any], *args: Any) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            func(*args)
        else:
            self._loop.call_soon_threadsafe(func, *args)
