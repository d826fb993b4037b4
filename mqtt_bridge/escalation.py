"""The escalation clock: alarms unacknowledged past their stored deadline go to the
county, also right after a restart that slept through the deadline."""

from __future__ import annotations

import asyncio
import time

from mqtt_bridge.metrics import BridgeMetrics
from xueliang.alarms import AlarmService
from xueliang.storage.types import utcnow

MAX_SLEEP_S = 30.0  # re-read deadlines at least this often (another process may add some)


class EscalationClock:
    """Sleeps until the earliest stored deadline. A new alarm wakes it only when its
    own deadline comes before the planned wake-up, so a busy alarm path does not
    make the clock query the database after every commit."""

    def __init__(self, service: AlarmService, metrics: BridgeMetrics) -> None:
        self.service = service
        self.metrics = metrics
        self.wake_at = 0.0  # time.monotonic() of the next planned look
        self._wake = asyncio.Event()

    def alarm_changed(self) -> None:
        if time.monotonic() + self.service.town_s < self.wake_at:
            self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()
            escalated = await self.service.escalate_overdue()
            self.metrics.escalated.inc(len(escalated))
            deadline = await self.service.next_deadline()
            pause = MAX_SLEEP_S
            if deadline is not None:
                pause = min(MAX_SLEEP_S, max(0.0, (deadline - utcnow()).total_seconds()))
            self.wake_at = time.monotonic() + pause
            try:
                async with asyncio.timeout(pause):
                    await self._wake.wait()
            except TimeoutError:
                pass
