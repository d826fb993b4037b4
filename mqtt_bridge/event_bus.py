"""The event bus over MQTT: every process that shows alarms learns of every change.

Each change of an alarm is published on `xl/centre/{town}/alarm` (through the outbox),
so following those topics is enough to hear of changes made by any bridge or portal
process. A message is only a wake-up: `xueliang.alarm_feed` reads the change itself
from the database, so a lost message costs latency (the feed also polls), never data.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator

from aiohttp import web

from mqtt_bridge.bridge import keep_running
from mqtt_bridge.client import Broker, Message, MqttClient, Protocol
from xueliang.events import Wake
from xueliang.web import EVENT_BUS, SETTINGS


class MqttEventBus:
    def __init__(self, broker: Broker, *, prefix: str, client_id: str, protocol: Protocol) -> None:
        self._subscribers: list[Wake] = []
        self.client = MqttClient(
            broker,
            # One connection per process: portals must not take over each other's.
            client_id=f"{client_id}-events-{secrets.token_hex(4)}",
            protocol=protocol,
            persistent=False,
            subscriptions=[(f"{prefix}/centre/+/alarm", 0)],
            on_message=self._heard,
            # After a reconnect, look again: changes may have been missed meanwhile.
            on_connected=self._wake_all,
        )

    def subscribe(self, wake: Wake) -> None:
        self._subscribers.append(wake)

    def _heard(self, _message: Message) -> None:
        self._wake_all()

    def _wake_all(self) -> None:
        for wake in self._subscribers:
            wake()


def setup(app: web.Application) -> None:
    """Provide the bus to the parts of this process (the portal's alarm feed)."""
    app.cleanup_ctx.append(_bus)


async def _bus(app: web.Application) -> AsyncIterator[None]:
    mqtt = app[SETTINGS].mqtt
    bus = MqttEventBus(
        Broker.for_settings(mqtt),
        prefix=mqtt.topic_prefix,
        client_id=mqtt.client_id,
        protocol=mqtt.protocol,
    )
    app[EVENT_BUS] = bus
    task = asyncio.create_task(keep_running("event-bus", bus.client.run), name="mqtt-event-bus")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
