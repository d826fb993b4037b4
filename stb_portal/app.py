"""Adds the portal to an application built by `xueliang.web.create_app`."""

from __future__ import annotations

from aiohttp import web

from stb_portal import i18n
from stb_portal.keys import JINJA, STATIC, TRANSLATIONS
from stb_portal.static import StaticFiles
from stb_portal.tv import alarm_views, law_views, views
from stb_portal.tv.render import environment
from xueliang.web import PartHealth, add_health_check


def setup(app: web.Application) -> None:
    """Register the household TV pages (the console and API land in their issues)."""
    app[JINJA] = environment()
    translations = i18n.load()
    app[TRANSLATIONS] = translations
    app[STATIC] = StaticFiles()
    app.router.add_get("/tv/static/{name}", app[STATIC].handle, name="tv_static")
    views.setup(app)
    alarm_views.setup(app)
    law_views.setup(app)

    async def check() -> PartHealth:
        return PartHealth("ok", {"languages": sorted(translations)})

    add_health_check(app, "portal", check)
