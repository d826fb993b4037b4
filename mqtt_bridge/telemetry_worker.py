"""Device liveness in a process of its own. Thousands of heartbeats a second cost a
whole core in paho alone; in the bridge's process they would delay alarms. Here they
get their own connection, interpreter and core; what they say is folded into one
reading per device, thinned to what is worth writing (`xueliang.telemetry.Throttle`:
changes at once, `last_seen_at` at its resolution) and handed to the bridge every
`bridge.heartbeat_flush_s`, which writes it (one writer: no lock fights over the SQLite
file). So the bridge, whose loop carries the alarms, unpickles a few readings a second,
not thousands."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from prometheus_client import CollectorRegistry

from mqtt_bridge.client import Broker, Message, MqttClient
from mqtt_bridge.metrics import BridgeMetrics
from mqtt_bridge.supervision import Supervision
from xueliang.config import BridgeSettings, Settings
from xueliang.storage import Database
from xueliang.telemetry import Throttle, intervals
from xueliang.topics import Topics

log = logging.getLogger(__name__)

Report = dict[str, Any]
TELEMETRY_NICENESS = 10


def run_worker(settings_json: str, reports: Connection, parent: int) -> None:
    """Entry point of the worker process (started with the "spawn" method)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the bridge, which stops us
    # Telemetry is the low-priority path: when the cores are busy, the bridge's alarm
    # loop runs first (a heartbeat may wait; an alarm must not).
    with contextlib.suppress(OSError):
        os.nice(TELEMETRY_NICENESS)
    settings = Settings.model_validate_json(settings_json)
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s[telemetry]: %(message)s",
    )
    with contextlib.suppress(asyncio.CancelledError):
        asyncio.run(_main(settings, reports, parent))


async def _main(settings: Settings, reports: Connection, parent: int) -> None:
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None
    loop.add_signal_handler(signal.SIGTERM, main.cancel)
    metrics = BridgeMetrics(CollectorRegistry())
    options = settings.bridge
    # Only its parsing and merging are used here; the bridge stores what it collects.
    supervision = Supervision(
        None,
        metrics,
        flush_s=options.heartbeat_flush_s,
        check_s=options.supervision_check_s,
        low_battery=options.low_battery,
    )
    topics = Topics(settings.mqtt.topic_prefix)
    db = Database(settings.database_url)
    throttle = Throttle()
    throttle.intervals = await db.run_read(intervals)  # before the first heartbeat

    def route(message: Message) -> None:
        parsed = topics.parse_device(message.topic)
        if parsed is None or parsed[1] == "alarm":
            metrics.rejected.labels("bad_topic").inc()
        elif parsed[1] == "heartbeat":
            supervision.heartbeat(message, parsed[0])
        else:
            supervision.status(message, parsed[0])

    client = MqttClient(
        Broker.for_settings(settings.mqtt),
        client_id=f"{settings.mqtt.client_id}-telemetry",
        protocol="3.1.1",  # no per-message property parsing
        persistent=False,  # statuses are retained; a missed heartbeat is harmless
        subscriptions=topics.telemetry_subscriptions(),
        on_message=route,
        read_batch=64,
    )
    try:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(client.run())
            tasks.create_task(
                _report(
                    reports, metrics, supervision, throttle, client, parent, main.cancel, options
                )
            )
            tasks.create_task(_refresh_intervals(db, throttle, options.supervision_check_s))
    finally:
        await client.disconnect()
        await db.close()


async def _refresh_intervals(db: Database, throttle: Throttle, every_s: float) -> None:
    """Devices added or changed elsewhere get their own interval within `every_s`."""
    while True:
        await asyncio.sleep(every_s)
        try:
            throttle.intervals = await db.run_read(intervals)
        except Exception:  # the database is away: keep the intervals we have
            log.exception("could not read the devices' heartbeat intervals")


async def _report(
    reports: Connection,
    metrics: BridgeMetrics,
    supervision: Supervision,
    throttle: Throttle,
    client: MqttClient,
    parent: int,
    stop: Callable[[], object],
    options: BridgeSettings,
) -> None:
    while True:
        if os.getppid() != parent:  # the bridge died without stopping us: no orphans
            log.warning("the bridge is gone; telemetry worker stops")
            stop()
            return
        readings = throttle.select(supervision.take())
        report: Report = {
            "connected": client.connected.is_set(),
            "rejected": _totals(metrics.rejected, "reason"),
            "readings": readings,
        }
        try:
            reports.send(report)
        except OSError:  # the bridge closed its end: it is stopping
            throttle.forget(readings)
        await asyncio.sleep(options.heartbeat_flush_s)


def _totals(counter: Any, label: str) -> dict[str, float]:
    return {
        sample.labels[label]: sample.value
        for family in counter.collect()
        for sample in family.samples
        if sample.name.endswith("_total")
    }
