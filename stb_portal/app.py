"""Adds the portal to an application built by `xueliang.web.create_app`."""

from __future__ import annotations

from aiohttp import web

from xueliang.web import PartHealth, add_health_check


def setup(app: web.Application) -> None:
    """Register the portal's routes (the TV pages, console and API land in their issues)."""

    async def check() -> PartHealth:
        return PartHealth("ok")

    add_health_check(app, "portal", check)
