"""The embedded amqtt broker: the zero-setup default of `xueliang run` when
`XL_MQTT_URL` is unset. A demo broker only: it keeps no session across restarts and
has known delivery gaps (amqtt #401), so production runs Mosquitto."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

from aiohttp import web
from amqtt.broker import Broker
from amqtt.errors import BrokerError

from xueliang.web import SETTINGS, PartHealth, add_health_check

log = logging.getLogger(__name__)


def broker_config(host: str, port: int) -> dict[str, object]:
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
        "plugins": {
            "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
        },
    }


class EmbeddedBrokerError(RuntimeError):
    """The embedded broker could not start (usually: its port is taken)."""


def embedded_broker(
    host: str, port: int
) -> Callable[[web.Application], AbstractAsyncContextManager[None]]:
    """A cleanup context that runs the broker for the application's lifetime."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        _check_port_free(host, port)
        broker = Broker(broker_config(host, port))
        try:
            await broker.start()
        except BrokerError as e:
            raise EmbeddedBrokerError(f"embedded MQTT broker on {host}:{port}: {e}") from None
        log.warning(
            "DEMO MQTT broker (amqtt, anonymous, not for production) listening on %s:%d; "
            "set XL_MQTT_URL to use Mosquitto",
            host,
            port,
        )

        async def check() -> PartHealth:
            return PartHealth("ok", {"embedded": True, "port": port})

        add_health_check(app, "mqtt_broker", check)
        try:
            yield
        finally:
            await broker.shutdown()

    return ctx  # type: ignore[return-value]


def setup(app: web.Application) -> None:
    """Run the embedded broker in this process if no external broker is configured."""
    mqtt = app[SETTINGS].mqtt
    if mqtt.url is None:
        app.cleanup_ctx.append(embedded_broker(mqtt.embedded_host, mqtt.embedded_port))


def _check_port_free(host: str, port: int) -> None:
    # amqtt logs a traceback and keeps going half-started when bind fails; fail first.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            raise EmbeddedBrokerError(
                f"embedded MQTT broker cannot listen on {host}:{port}: {e.strerror}"
            ) from None
