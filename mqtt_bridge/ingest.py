"""Alarm ingest: validate, store durably (group commit), and only then PUBACK the
message and tell the device `received`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from mqtt_bridge.client import Message, MqttClient, NotConnected
from mqtt_bridge.metrics import BridgeMetrics
from xueliang.alarm_payloads import ack_payload, to_json
from xueliang.alarms import AlarmService, Raised, RaiseRequest
from xueliang.messages import AlarmMessage, Rejected, parse
from xueliang.ratelimit import DeviceLimiter
from xueliang.topics import Topics

log = logging.getLogger(__name__)

_POISON_ATTEMPTS = 5  # a single valid message that still cannot be stored


class AlarmIngest:
    """Turns alarm messages into stored alarms, in batches, in arrival order."""

    def __init__(
        self,
        service: AlarmService,
        client: MqttClient,
        topics: Topics,
        metrics: BridgeMetrics,
        limiter: DeviceLimiter,
        batch_max: int,
    ) -> None:
        self.service = service
        self.client = client
        self.topics = topics
        self.metrics = metrics
        self.limiter = limiter
        self.batch_max = batch_max
        self.queue: asyncio.Queue[tuple[Message, RaiseRequest]] = asyncio.Queue()

    def submit(self, message: Message, device: str) -> AlarmMessage | None:
        """Validate and queue one alarm message (runs in the paho callback)."""
        try:
            alarm = parse(AlarmMessage, message.payload)
        except Rejected as e:
            self.reject(message, e.reason, f"alarm from {device}: {e}")
            return None
        if not self.limiter.allow(device):
            self.reject(message, "rate_limited", f"device {device} is flooding")
            return None
        request = RaiseRequest(
            source="button",
            kind=alarm.kind,
            device=device,
            message_id=alarm.id,
            device_ts=alarm.device_ts,
            battery=alarm.battery,
        )
        self.queue.put_nowait((message, request))
        return alarm

    def submit_request(self, message: Message, request: RaiseRequest) -> None:
        """Queue an already translated press (the Zigbee2MQTT adapter)."""
        assert request.device is not None
        if not self.limiter.allow(request.device):
            self.reject(message, "rate_limited", f"device {request.device} is flooding")
            return
        self.queue.put_nowait((message, request))

    def reject(self, message: Message, reason: str, detail: str) -> None:
        """Log, count, acknowledge, and otherwise ignore a message."""
        self.metrics.rejected.labels(reason).inc()
        log.warning("rejected %s on %s: %s", reason, message.topic, detail[:300])
        self.client.ack(message)

    async def run(self) -> None:
        while True:
            batch = [await self.queue.get()]
            while len(batch) < self.batch_max and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            await self._store(batch)

    async def _store(self, batch: list[tuple[Message, RaiseRequest]]) -> None:
        try:
            raised = await self._raise(batch)
        except Exception:
            # One bad apple must not hold up the rest: store them one by one.
            log.exception("alarm batch of %d failed; storing one by one", len(batch))
            for item in batch:
                await self._store_alone(item)
            return
        self._answer(batch, raised)

    async def _store_alone(self, item: tuple[Message, RaiseRequest]) -> None:
        for attempt in range(1, _POISON_ATTEMPTS + 1):
            try:
                raised = await self._raise([item])
            except Exception:
                log.exception("alarm %s could not be stored (attempt %d)", item[1], attempt)
                await asyncio.sleep(0.2 * attempt)
                continue
            self._answer([item], raised)
            return
        self.reject(item[0], "store_failed", f"giving up on {item[1]}")

    async def _raise(self, batch: list[tuple[Message, RaiseRequest]]) -> list[Raised]:
        """Store, retrying for as long as the database is unreachable: an alarm is
        never dropped because the disk or the network hiccuped."""
        delay = 0.05
        while True:
            try:
                return await self.service.raise_many([request for _, request in batch])
            except Exception as e:
                if not _transient(e):
                    raise
                self.metrics.store_retries.inc()
                log.error("database unavailable (%s); retrying in %.2f s", e, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _answer(self, batch: list[tuple[Message, RaiseRequest]], raised: list[Raised]) -> None:
        """Stored: now PUBACK each message and tell each device `received`."""
        for (message, request), result in zip(batch, raised, strict=True):
            self.client.ack(message)
            if request.message_id is not None and request.device is not None:
                ack = ack_payload(request.message_id, result.alarm, "received")
                # If the connection just dropped, the device resends until it hears it.
                with contextlib.suppress(NotConnected):
                    self.client.publish(self.topics.ack(request.device), to_json(ack), qos=1)
            self.metrics.ingest_seconds.observe(time.perf_counter() - message.received)


def _transient(error: Exception) -> bool:
    """Errors that go away by themselves: a locked or unreachable database."""
    if isinstance(error, OperationalError | InterfaceError | OSError):
        return True
    return isinstance(error, DBAPIError) and error.connection_invalidated
