"""The escalation clock: alarms unacknowledged past their stored deadline go to the
county, also right after a restart that slept through the deadline."""

from __future__ import annotations

import asyncio
import logging

from mqtt_bridge.metrics import BridgeMetrics
from xueliang.alarms import AlarmService
from xueliang.storage.types import utcnow

log = logging.getLogger(__name__)

MAX_SLEEP_S = 30.0  # re-read deadlines at least this often (another process may add some)


async def run_escalation(
    service: AlarmService, metrics: BridgeMetrics, wake: asyncio.Event
) -> None:
    while True:
        wake.clear()
        escalated = await service.escalate_overdue()
        metrics.escalated.inc(len(escalated))
        deadline = await service.next_deadline()
        pause = MAX_SLEEP_S
        if deadline is not None:
            pause = min(MAX_SLEEP_S, max(0.0, (deadline - utcnow()).total_seconds()))
        try:
            async with asyncio.timeout(pause):
                await wake.wait()
        except TimeoutError:
            pass
