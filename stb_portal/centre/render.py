"""Rendering console pages: staff language from a cookie (Chinese by default), the
signed-in person and the CSRF token in every template, never cached."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from stb_portal import i18n
from stb_portal.auth import csrf_token
from stb_portal.keys import CENTRE_STATIC, JINJA, TRANSLATIONS
from xueliang.staff_sessions import StaffSession

LANG_COOKIE = "xl_console_lang"


def language(request: web.Request) -> str:
    lang = request.cookies.get(LANG_COOKIE, i18n.DEFAULT_LANG)
    return lang if lang in i18n.LANGS else i18n.DEFAULT_LANG


def page(
    request: web.Request,
    template: str,
    *,
    session: StaffSession | None,
    status: int = 200,
    **context: Any,
) -> web.Response:
    app = request.config_dict
    lang = language(request)
    with i18n.speaking(app[TRANSLATIONS][lang]):
        html = (
            app[JINJA]
            .get_template(template)
            .render(
                lang=lang,
                static=app[CENTRE_STATIC].url,
                session=session,
                me=session.staff if session else None,
                csrf=csrf_token(request, session) if session else "",
                path=request.path,
                **context,
            )
        )
    response = web.Response(
        text=html,
        status=status,
        content_type="text/html",
        headers={
            "Cache-Control": "no-store",
            # Nothing from elsewhere: no CDN, no inline script, no framing.
            "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
            "style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
        },
    )
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        response.enable_compression(web.ContentCoding.gzip)
    return response
