"""Wires the parts into one aiohttp application and serves it until SIGINT/SIGTERM.

This is the only place that imports the parts (`stb_portal`, `video_relay`,
`mqtt_bridge`); they never import each other.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator, Callable, Iterable

from aiohttp import web

import mqtt_bridge.bridge
import mqtt_bridge.event_bus
import stb_portal.app
import video_relay.app
from mqtt_bridge.embedded_broker import EmbeddedBrokerError
from xueliang import demo
from xueliang.cli.output import EXIT_REFUSED, demo_summary
from xueliang.config import Settings
from xueliang.web import DATABASE, SECRET_KEY, SETTINGS, create_app

log = logging.getLogger(__name__)

PARTS: dict[str, Callable[[web.Application], None]] = {
    "portal": stb_portal.app.setup,
    "relay": video_relay.app.setup,
    "bridge": mqtt_bridge.bridge.setup,
}


def build_app(
    settings: Settings, secret_key: bytes, *, parts: Iterable[str], demo: bool = False
) -> web.Application:
    """The application of one process: base resources, then each chosen part."""
    app = create_app(settings, secret_key)
    if demo:
        app.cleanup_ctx.append(_seed_demo)
    parts = list(parts)
    if {"portal", "relay"} & set(parts) and settings.mqtt.url is not None:
        # Alarms changed by other processes (a bridge, other portals) reach this
        # process's consoles through the broker; without one, only this process's.
        mqtt_bridge.event_bus.setup(app)
    for part in parts:
        PARTS[part](app)
    return app


async def _seed_demo(app: web.Application) -> AsyncIterator[None]:
    county = await demo.seed(app[DATABASE], app[SECRET_KEY])
    print(demo_summary(county, app[SETTINGS].http.base_url()), flush=True)
    yield


def serve(app: web.Application, settings: Settings) -> int:
    """Run until a signal; cleanup contexts stop every resource in reverse order."""
    host, port = settings.http.host, settings.http.port
    log.info("HTTP on %s:%d (health at /healthz)", host, port)
    try:
        web.run_app(app, host=host, port=port, print=None, shutdown_timeout=5, access_log=None)
    except EmbeddedBrokerError as e:
        print(f"xueliang: {e}", file=sys.stderr)
        return EXIT_REFUSED
    except OSError as e:
        print(f"xueliang: cannot listen on {host}:{port}: {e.strerror}", file=sys.stderr)
        return EXIT_REFUSED
    log.info("stopped")
    return 0
