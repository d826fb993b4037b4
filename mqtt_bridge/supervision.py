"""Device liveness over MQTT: heartbeats and status (birth/will) messages are
collected in memory and written in batches; silent devices are reported offline.
A separate path from alarms, so telemetry floods never delay an alarm."""

from __future__ import annotations

import asyncio
import logging

from mqtt_bridge.client import Message
from mqtt_bridge.metrics import BridgeMetrics
from xueliang import telemetry
from xueliang.messages import Heartbeat, Rejected, parse, parse_status
from xueliang.storage import Database
from xueliang.storage.types import utcnow
from xueliang.telemetry import Reading

log = logging.getLogger(__name__)


class Supervision:
    def __init__(
        self,
        db: Database | None,
        metrics: BridgeMetrics,
        *,
        flush_s: float,
        check_s: float,
        low_battery: int,
    ) -> None:
        self.db = db
        self.metrics = metrics
        self.flush_s = flush_s
        self.check_s = check_s
        self.low_battery = low_battery
        self._pending: dict[str, Reading] = {}
        # What the database holds per device, so a flush writes only what changed;
        # dropped at every check, so changes made elsewhere are seen within check_s.
        self._stored: dict[str, telemetry.Stored] = {}
        self.online = 0  # devices online at the last check

    def take(self) -> dict[str, Reading]:
        """The readings collected since the last call (the worker hands them over)."""
        readings, self._pending = self._pending, {}
        return readings

    def merge(self, readings: dict[str, Reading]) -> None:
        for device, reading in readings.items():
            self.note(device, reading)

    def note(self, device: str, reading: Reading) -> None:
        current = self._pending.get(device)
        self._pending[device] = reading if current is None else current.merge(reading)

    def heartbeat(self, message: Message, device: str) -> None:
        try:
            beat = parse(Heartbeat, message.payload)
        except Rejected as e:
            self._reject(message, e.reason, str(e))
            return
        self.note(
            device, Reading(at=utcnow(), battery=beat.battery, rssi=beat.rssi, firmware=beat.fw)
        )

    def status(self, message: Message, device: str) -> None:
        try:
            state = parse_status(message.payload)
        except Rejected as e:
            self._reject(message, e.reason, str(e))
            return
        self.note(device, Reading(at=utcnow(), online=state == "online"))

    def battery(self, device: str, level: int) -> None:
        self.note(device, Reading(at=utcnow(), battery=level))

    def _reject(self, message: Message, reason: str, detail: str) -> None:
        self.metrics.rejected.labels(reason).inc()
        log.warning("rejected %s on %s: %s", reason, message.topic, detail[:300])

    async def run_flush(self) -> None:
        while True:
            await asyncio.sleep(self.flush_s)
            await self.flush()

    async def flush(self) -> None:
        readings = self.take()
        if not readings:
            return
        assert self.db is not None, "only the bridge's own Supervision stores readings"
        try:
            recorded = await telemetry.record(self.db, readings, self.low_battery, self._stored)
        except Exception:
            log.exception("could not store %d device readings; keeping them", len(readings))
            for device, reading in readings.items():
                self.note(device, reading)
            return
        if recorded.unknown:
            self.metrics.rejected.labels("unregistered_device").inc(len(recorded.unknown))
        for device, kind in recorded.events:
            self.metrics.supervision.labels(kind).inc()
            log.info("device %s: %s", device, kind)

    async def run_checks(self) -> None:
        assert self.db is not None
        while True:
            silent = await telemetry.mark_silent_offline(self.db)
            self._stored.clear()
            for device in silent:
                self.metrics.supervision.labels("offline").inc()
                log.warning("device %s is silent past its heartbeat interval: offline", device)
            self.online = await telemetry.online_count(self.db)
            self.metrics.devices_online.set(self.online)
            await asyncio.sleep(self.check_s)
