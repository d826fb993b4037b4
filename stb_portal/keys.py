"""The portal's application values."""

from __future__ import annotations

import jinja2
from aiohttp import web
from babel.support import NullTranslations

from stb_portal.static import StaticFiles
from xueliang.alarm_feed import AlarmFeed

JINJA = web.AppKey("jinja", jinja2.Environment)
TRANSLATIONS = web.AppKey("translations", dict[str, NullTranslations])
STATIC = web.AppKey("static", StaticFiles)
FEED = web.AppKey("alarm_feed", AlarmFeed)
CENTRE_STATIC = web.AppKey("centre_static", StaticFiles)
