"""Rendering console pages: staff language from a cookie (Chinese by default), the
signed-in person and the CSRF token in every template, never cached; CSV downloads, and
the ids in console paths."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from stb_portal import i18n
from stb_portal.auth import csrf_token
from stb_portal.keys import CENTRE_STATIC, JINJA, TRANSLATIONS
from xueliang import validation
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


def csv_response(body: str, filename: str) -> web.Response:
    """`body` as a CSV download named `filename`, never cached."""
    return web.Response(
        # With a byte-order mark, spreadsheet programs read the Chinese text right.
        body=body.encode("utf-8-sig"),
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


def path_id(request: web.Request, name: str = "id") -> int:
    """The number in the path's `name` part; 404 for anything that is not one."""
    found = validation.row_id(request.match_info[name])
    if found is None:
        raise web.HTTPNotFound()
    return found
