"""The MQTT bridge: routes every message of the contract to its handler, runs the
outbox forwarders, the escalation clock and device supervision, and reports its
health. `setup(app)` adds it to a process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from multiprocessing.process import BaseProcess

from aiohttp import web
from sqlalchemy import func, select

from mqtt_bridge import embedded_broker
from mqtt_bridge.client import Broker, Message, MqttClient, NotConnected, Will
from mqtt_bridge.escalation import EscalationClock
from mqtt_bridge.ingest import AlarmIngest
from mqtt_bridge.metrics import BridgeMetrics
from mqtt_bridge.outbox import OutboxForwarder, depth
from mqtt_bridge.supervision import Supervision
from mqtt_bridge.telemetry_worker import Report, run_worker
from xueliang.alarms import AlarmService, RaiseRequest
from xueliang.config import Settings
from xueliang.errors import InvalidTransition, NotFound
from xueliang.geography import Scope
from xueliang.messages import Command, Rejected, ZigbeeEvent, parse
from xueliang.ratelimit import DeviceLimiter
from xueliang.storage import Database
from xueliang.storage.tables import alarms, counties
from xueliang.storage.types import utcnow
from xueliang.telemetry import Reading
from xueliang.topics import Topics
from xueliang.web import ALARMS, DATABASE, METRICS, SETTINGS, PartHealth, add_health_check

log = logging.getLogger(__name__)

METRICS_REFRESH_S = 5.0
STATES = ("received", "acknowledged", "dispatched", "resolved", "false_alarm", "cancelled")


class Bridge:
    def __init__(
        self, settings: Settings, db: Database, service: AlarmService, metrics: BridgeMetrics
    ) -> None:
        self.settings = settings
        self.db = db
        self.service = service
        self.metrics = metrics
        self.topics = Topics(settings.mqtt.topic_prefix)
        self.county: str | None = None
        mqtt = settings.mqtt
        broker = Broker.for_settings(mqtt)
        # The embedded demo broker speaks MQTT 3.1.1 only.
        protocol = mqtt.protocol if mqtt.url is not None else "3.1.1"
        self.zigbee = settings.bridge.zigbee2mqtt
        subscriptions = self.topics.alarm_subscriptions()
        if self.zigbee is not None:
            subscriptions.append((f"{self.zigbee.base_topic}/+", 1))
        self.client = MqttClient(
            broker,
            client_id=mqtt.client_id,
            protocol=protocol,
            persistent=True,
            session_expiry_s=mqtt.session_expiry_s,
            manual_ack=True,
            will=Will(self.topics.bridge_status, b"offline"),
            subscriptions=subscriptions,
            on_message=self._route,
            on_connected=self._announce_online,
        )
        # Heartbeats and status messages are handled by a worker process with its own
        # connection (mqtt_bridge.telemetry_worker): they never take an alarm's CPU.
        self._worker: BaseProcess | None = None
        self._worker_rejected: dict[str, float] = {}
        self.telemetry_ready = asyncio.Event()
        options = settings.bridge
        self.ingest = AlarmIngest(
            service,
            self.client,
            self.topics,
            metrics,
            DeviceLimiter(options.flood_burst, options.flood_per_minute),
            options.batch_max,
        )
        self.supervision = Supervision(
            db,
            metrics,
            flush_s=options.heartbeat_flush_s,
            check_s=options.supervision_check_s,
            low_battery=options.low_battery,
        )
        self.upstream = {
            town: MqttClient(
                Broker.from_url(up.url),
                client_id=f"{mqtt.client_id}-{town}",
                protocol=mqtt.protocol,
                persistent=False,  # the outbox is our persistence towards centres
            )
            for town, up in options.upstream.items()
        }
        self.forwarders = [OutboxForwarder(db, "local", self.client)] + [
            OutboxForwarder(db, town, client) for town, client in self.upstream.items()
        ]
        self.commands: asyncio.Queue[tuple[Message, str]] = asyncio.Queue()
        self.escalation = EscalationClock(service, metrics)
        service.listeners.append(self._changed)

    # --- running -------------------------------------------------------------------

    async def run(self) -> None:
        async with self.db.read() as conn:
            self.county = (await conn.execute(select(func.min(counties.c.id)))).scalar_one()
        loops: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("mqtt-main", self.client.run),
            ("telemetry-worker", self._run_telemetry_worker),
            *((f"mqtt-{c.client_id}", c.run) for c in self.upstream.values()),
            ("alarm-ingest", self.ingest.run),
            *((f"outbox-{f.destination}", f.run) for f in self.forwarders),
            ("escalation", self.escalation.run),
            ("telemetry-flush", self.supervision.run_flush),
            ("supervision", self.supervision.run_checks),
            ("centre-commands", self._run_commands),
            ("bridge-metrics", self._refresh_metrics),
        ]
        async with asyncio.TaskGroup() as tasks:
            for name, loop in loops:
                tasks.create_task(keep_running(name, loop), name=name)

    async def stop(self) -> None:
        """Say goodbye on the status topic, write pending telemetry, disconnect."""
        with contextlib.suppress(NotConnected, TimeoutError):
            async with asyncio.timeout(2):
                await self.client.publish(self.topics.bridge_status, "offline", 1, retain=True)
        await self.supervision.flush()
        for client in (self.client, *self.upstream.values()):
            await client.disconnect()
        self._stop_worker()

    def health(self) -> PartHealth:
        connected = self.client.connected.is_set()
        return PartHealth(
            "ok" if connected else "degraded",
            {
                "broker": str(self.client.broker),
                "connected": connected,
                "telemetry_connected": self.telemetry_ready.is_set(),
                "queued_alarms": self.ingest.queue.qsize(),
                "upstream": {t: c.connected.is_set() for t, c in self.upstream.items()},
            },
        )

    def _changed(self) -> None:
        for forwarder in self.forwarders:
            forwarder.wake.set()
        self.escalation.alarm_changed()

    def _announce_online(self) -> None:
        with contextlib.suppress(NotConnected):
            self.client.publish(self.topics.bridge_status, "online", qos=1, retain=True)

    # --- routing (paho callback, on the loop) --------------------------------------

    def _route(self, message: Message) -> None:
        parsed = self.topics.parse_device(message.topic)
        if parsed is not None and parsed[1] == "alarm":
            device = parsed[0]
            alarm = self.ingest.submit(message, device)
            if alarm is not None:  # an alarm is a sign of life too
                self.supervision.note(device, Reading(at=utcnow(), battery=alarm.battery))
            return
        town = self.topics.parse_command(message.topic)
        if town is not None:
            self.commands.put_nowait((message, town))
            return
        if self.zigbee is not None and message.topic.startswith(self.zigbee.base_topic + "/"):
            self._zigbee(message)
            return
        self.ingest.reject(message, "bad_topic", "not a topic of the contract")

    # --- the telemetry worker --------------------------------------------------------

    async def _run_telemetry_worker(self) -> None:
        loop = asyncio.get_running_loop()
        # A pipe, not a Queue: no semaphore, so no resource-tracker process to outlive us.
        reports, sender = multiprocessing.Pipe(duplex=False)
        worker = multiprocessing.get_context("spawn").Process(
            target=run_worker,
            args=(self.settings.model_dump_json(), sender, os.getpid()),
            name="xueliang-telemetry",
            daemon=True,
        )
        self._worker = worker
        await loop.run_in_executor(None, worker.start)
        sender.close()
        try:
            while worker.is_alive():
                if await loop.run_in_executor(None, reports.poll, 1.0):
                    try:
                        self._apply(reports.recv())
                    except EOFError:
                        break
            raise RuntimeError(f"telemetry worker exited ({worker.exitcode})")
        finally:
            self.telemetry_ready.clear()
            self._stop_worker()
            reports.close()

    def _apply(self, report: Report) -> None:
        """Fold the worker's counters into this process's metrics."""
        if report["connected"]:
            self.telemetry_ready.set()
        else:
            self.telemetry_ready.clear()
        self.supervision.merge(report["readings"])
        for reason, total in report["rejected"].items():
            before = self._worker_rejected.get(reason, 0.0)
            if total > before:
                self.metrics.rejected.labels(reason).inc(total - before)
                self._worker_rejected[reason] = total

    def _stop_worker(self) -> None:
        worker, self._worker = self._worker, None
        if worker is None or not worker.is_alive():
            return
        worker.terminate()
        worker.join(5)
        if worker.is_alive():
            worker.kill()
            worker.join()

    def _zigbee(self, message: Message) -> None:
        assert self.zigbee is not None
        name = message.topic[len(self.zigbee.base_topic) + 1 :]
        device = self.zigbee.devices.get(name)
        if device is None:  # Zigbee2MQTT also reports lamps and sensors: not ours
            self.client.ack(message)
            return
        try:
            event = parse(ZigbeeEvent, message.payload)
        except Rejected as e:
            self.ingest.reject(message, e.reason, f"zigbee {name}: {e}")
            return
        battery = None if event.battery is None else max(0, min(100, round(event.battery)))
        self.supervision.note(device, Reading(at=utcnow(), battery=battery))
        if event.action in self.zigbee.alarm_actions:
            # Zigbee buttons have no message id: a redelivery joins the open alarm.
            self.ingest.submit_request(message, RaiseRequest("button", "panic", device=device))
        else:
            self.client.ack(message)

    # --- centre commands -----------------------------------------------------------

    async def _run_commands(self) -> None:
        while True:
            message, town = await self.commands.get()
            try:
                await self._command(message, town)
            except Exception:
                # Not acknowledged: the broker delivers it again after a reconnect.
                self.metrics.rejected.labels("command_failed").inc()
                log.exception("command on %s could not be applied", message.topic)

    async def _command(self, message: Message, town: str) -> None:
        try:
            command = parse(Command, message.payload)
        except Rejected as e:
            self.ingest.reject(message, e.reason, f"command from {town}: {e}")
            return
        # A town's system acts on its town's alarms; the county's on all of them.
        scope = Scope("county", town) if town == self.county else Scope("town", town)
        try:
            await self.service.act(
                command.alarm,
                command.domain_action,
                by=command.by,
                source=f"centre:{town}",
                note=command.note,
                scope=scope,
            )
        except NotFound:
            self.ingest.reject(message, "unknown_alarm", f"{town} cannot act on {command.alarm}")
            return
        except InvalidTransition as e:
            self.ingest.reject(message, "invalid_transition", str(e))
            return
        self.client.ack(message)

    # --- metrics -------------------------------------------------------------------

    async def _refresh_metrics(self) -> None:
        while True:
            async with self.db.read() as conn:
                rows = await conn.execute(
                    select(alarms.c.state, func.count()).group_by(alarms.c.state)
                )
                counts: dict[str, int] = {row[0]: row[1] for row in rows}
            for state in STATES:
                self.metrics.alarms.labels(state).set(counts.get(state, 0))
            waiting = await depth(self.db)
            for forwarder in self.forwarders:
                self.metrics.outbox_depth.labels(forwarder.destination).set(
                    waiting.get(forwarder.destination, 0)
                )
            self.metrics.connected.labels(str(self.client.broker)).set(
                1 if self.client.connected.is_set() else 0
            )
            await asyncio.sleep(METRICS_REFRESH_S)


async def keep_running(name: str, loop: Callable[[], Awaitable[None]]) -> None:
    """Run one of the bridge's loops; if it fails (a database outage, a bug), log it and
    start it again after a pause, so one broken part never stops the others."""
    pause = 0.5
    while True:
        try:
            await loop()
            return
        except Exception:
            log.exception("bridge loop %s failed; restarting in %.1f s", name, pause)
        await asyncio.sleep(pause)
        pause = min(pause * 2, 30.0)


def setup(app: web.Application) -> None:
    """Run the bridge in this process (and the embedded broker when none is configured)."""
    embedded_broker.setup(app)
    app.cleanup_ctx.append(_bridge)


async def _bridge(app: web.Application) -> AsyncIterator[None]:
    bridge = Bridge(app[SETTINGS], app[DATABASE], app[ALARMS], BridgeMetrics(app[METRICS].registry))
    task = asyncio.create_task(bridge.run(), name="mqtt-bridge")

    async def check() -> PartHealth:
        if task.done():
            return PartHealth("down", {"error": "the bridge stopped; see the log"})
        return bridge.health()

    task.add_done_callback(_log_end)
    add_health_check(app, "bridge", check)
    yield
    await bridge.stop()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _log_end(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the MQTT bridge stopped", exc_info=task.exception())
