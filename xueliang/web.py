"""The HTTP application every process serves: `/healthz`, `/metrics`, errors, and the
resources (database, secret key) that the parts' routes use.

Parts add themselves with a `setup(app)` function; only the CLI entrance chooses which.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from xueliang import __version__
from xueliang.alarms import AlarmService
from xueliang.config import Settings
from xueliang.errors import AlreadyExists, Busy, Conflict, InvalidInput, NotFound
from xueliang.events import EventBus
from xueliang.metrics import Metrics
from xueliang.storage import Database, ensure_schema

log = logging.getLogger(__name__)

Status = Literal["ok", "degraded", "down"]


@dataclass(frozen=True, slots=True)
class PartHealth:
    status: Status
    detail: dict[str, Any] = field(default_factory=dict)


HealthCheck = Callable[[], Awaitable[PartHealth]]

SETTINGS = web.AppKey("settings", Settings)
SECRET_KEY = web.AppKey("secret_key", bytes)
DATABASE = web.AppKey("database", Database)
ALARMS = web.AppKey("alarms", AlarmService)
METRICS = web.AppKey("metrics", Metrics)
HEALTH_CHECKS = web.AppKey("health_checks", dict[str, HealthCheck])
# Set by the entrance when alarms change in other processes too (see xueliang.events).
EVENT_BUS = web.AppKey("event_bus", EventBus)


def create_app(settings: Settings, secret_key: bytes) -> web.Application:
    """The base application; add parts with their `setup(app)` before running it."""
    app = web.Application(middlewares=[_serve], client_max_size=1024**2)
    app[SETTINGS] = settings
    app[SECRET_KEY] = secret_key
    app[METRICS] = Metrics()
    app[HEALTH_CHECKS] = {}
    app.cleanup_ctx.append(_database)
    app.router.add_get("/healthz", healthz, name="healthz")
    app.router.add_get("/metrics", metrics, name="metrics")
    return app


def add_health_check(app: web.Application, part: str, check: HealthCheck) -> None:
    app[HEALTH_CHECKS][part] = check


async def _database(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    db = Database(settings.database_url)
    try:
        await ensure_schema(db, settings.database.auto_upgrade)
    except BaseException:
        await db.close()
        raise
    app[DATABASE] = db
    app[ALARMS] = AlarmService.from_settings(db, settings)

    async def check() -> PartHealth:
        try:
            await db.ping()
        except Exception as e:  # any driver error means the database is unusable
            return PartHealth("down", {"error": type(e).__name__, "backend": db.backend})
        return PartHealth("ok", {"backend": db.backend})

    add_health_check(app, "database", check)
    yield
    await db.close()


async def healthz(request: web.Request) -> web.Response:
    """`{"status": "ok", "parts": {...}}`; 503 when any part is down."""
    app = request.app
    parts: dict[str, Any] = {}
    for name, check in app[HEALTH_CHECKS].items():
        health = await check()
        parts[name] = {"status": health.status, **health.detail}
        app[METRICS].part_up.labels(name).set(1 if health.status == "ok" else 0)
    statuses = {p["status"] for p in parts.values()}
    status: Status = (
        "down" if "down" in statuses else "degraded" if "degraded" in statuses else "ok"
    )
    body = {"status": status, "version": __version__, "parts": parts}
    return web.json_response(body, status=503 if status == "down" else 200)


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


STATUS_OF = {NotFound: 404, InvalidInput: 400, AlreadyExists: 409, Conflict: 409, Busy: 503}


@web.middleware
async def _serve(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every request passes here (one middleware: each layer costs every request).

    Domain errors that escape a view become their HTTP status; anything else is a
    logged 500 that shows no internals. Every request is counted and timed by its
    route name (never the raw path: a scanner must not create a time series per URL
    it tries)."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as e:
        status = e.status
        raise
    except tuple(STATUS_OF) as e:
        status = next(s for kind, s in STATUS_OF.items() if isinstance(e, kind))
        return web.json_response({"error": str(e)}, status=status)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return web.json_response({"error": "internal error"}, status=500)
    finally:
        route = request.match_info.route.name or (
            "unmatched" if request.match_info.http_exception else "unnamed"
        )
        elapsed = time.perf_counter() - started
        request.app[METRICS].requests.observe(route, request.method, status, elapsed)
