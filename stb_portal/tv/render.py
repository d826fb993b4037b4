"""Rendering TV pages: the household's language, simple mode and screen size come
from cookies; every page is gzipped and never cached (states change)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import jinja2
from aiohttp import web

from stb_portal import i18n
from stb_portal.keys import JINJA, STATIC, TRANSLATIONS
from stb_portal.tv.session import csrf_token
from xueliang.alarm_payloads import iso
from xueliang.geography import LOCAL_TIME
from xueliang.pairing import Session
from xueliang.resources import templates_dir

LANG_COOKIE = "xl_lang"
SIMPLE_COOKIE = "xl_simple"
SD_COOKIE = "xl_sd"


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,  # templates ship with the code; no stat() per page
    )
    env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=i18n.gettext, ngettext=i18n.ngettext, newstyle=True
    )
    env.filters["clock"] = _clock
    env.filters["iso"] = iso
    return env


def _clock(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(LOCAL_TIME).strftime("%m-%d %H:%M")


def preferences(request: web.Request) -> dict[str, Any]:
    lang = request.cookies.get(LANG_COOKIE, i18n.DEFAULT_LANG)
    return {
        "lang": lang if lang in i18n.LANGS else i18n.DEFAULT_LANG,
        "simple": request.cookies.get(SIMPLE_COOKIE, "1") != "0",
        "sd": request.cookies.get(SD_COOKIE) == "1",
    }


def page(
    request: web.Request,
    template: str,
    *,
    session: Session | None = None,
    status: int = 200,
    **context: Any,
) -> web.Response:
    app = request.app
    prefs = preferences(request)
    with i18n.speaking(app[TRANSLATIONS][prefs["lang"]]):
        html = (
            app[JINJA]
            .get_template(template)
            .render(
                **prefs,
                static=app[STATIC].url,
                session=session,
                csrf=csrf_token(request, session) if session else "",
                **context,
            )
        )
    response = web.Response(
        text=html,
        status=status,
        content_type="text/html",
        headers={"Cache-Control": "no-store", "Vary": "Accept-Encoding, Cookie"},
    )
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        response.enable_compression(web.ContentCoding.gzip)
    return response
