"""Adds the portal to an application built by `xueliang.web.create_app`: the household
TV pages, the staff console and the staff API, with the live alarm feed they share."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web
from prometheus_client import Gauge

from stb_portal import auth, i18n
from stb_portal.api import views as api_views
from stb_portal.centre import booking_views, lawyer_views, poll_views, stats_views
from stb_portal.centre import views as centre_views
from stb_portal.keys import CENTRE_STATIC, FEED, JINJA, STATIC, TRANSLATIONS
from stb_portal.static import CENTRE_STATIC_DIR, StaticFiles
from stb_portal.tv import alarm_views, camera_views, law_views, views
from stb_portal.tv import lawyer_views as tv_lawyer_views
from stb_portal.tv import poll_views as tv_poll_views
from stb_portal.tv.render import environment
from xueliang.alarm_feed import AlarmFeed
from xueliang.web import ALARMS, DATABASE, EVENT_BUS, METRICS, PartHealth, add_health_check


def setup(app: web.Application) -> None:
    """Register the TV pages, the console and `/api/v1`."""
    app[JINJA] = environment()
    translations = i18n.load()
    app[TRANSLATIONS] = translations
    app[STATIC] = StaticFiles()
    app[CENTRE_STATIC] = StaticFiles(CENTRE_STATIC_DIR, "/centre/static/")
    app.router.add_get("/tv/static/{name}", app[STATIC].handle, name="tv_static")
    app.router.add_get("/centre/static/{name}", app[CENTRE_STATIC].handle, name="centre_static")
    auth.setup(app)
    views.setup(app)
    alarm_views.setup(app)
    law_views.setup(app)
    camera_views.setup(app)
    tv_lawyer_views.setup(app)
    tv_poll_views.setup(app)
    centre_views.setup(app)
    stats_views.setup(app)
    lawyer_views.setup(app)
    booking_views.setup(app)
    poll_views.setup(app)
    api_views.setup(app)
    app.cleanup_ctx.append(_feed)

    async def check() -> PartHealth:
        feed = app[FEED]
        return PartHealth(
            "ok", {"languages": sorted(translations), "event_followers": feed.followers}
        )

    add_health_check(app, "portal", check)


async def _feed(app: web.Application) -> AsyncIterator[None]:
    """One reader of alarm changes per process, woken by this process's commits and,
    when the entrance provides one, by the event bus (changes made elsewhere)."""
    feed = AlarmFeed(app[DATABASE])
    app[FEED] = feed
    Gauge(
        "xl_event_followers", "Consoles following alarm events in this process.",
        registry=app[METRICS].registry,
    ).set_function(lambda: feed.followers)  # fmt: skip
    app[ALARMS].listeners.append(feed.wake)
    if EVENT_BUS in app:
        app[EVENT_BUS].subscribe(feed.wake)
    task = asyncio.create_task(feed.run(), name="alarm-feed")
    app.on_shutdown.append(lambda _app: _close(feed))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _close(feed: AlarmFeed) -> None:
    feed.close_all()
