"""A paired box's session: a signed, HttpOnly cookie naming the household and the
pairing generation; forms carry a CSRF token derived from the same."""

from __future__ import annotations

import hmac
from functools import partial

from aiohttp import web

from xueliang import pairing
from xueliang.errors import InvalidCredentials
from xueliang.pairing import Session
from xueliang.signing import derive, sign, unsign
from xueliang.ttl_cache import TtlCache
from xueliang.web import DATABASE, SECRET_KEY

COOKIE = "xl_tv"
BOX_COOKIE = "xl_box"
MAX_AGE_S = 400 * 86_400  # the longest a browser keeps a cookie
PURPOSE = "tv-session"
# Checked on every page; a re-issued link unpairs old boxes within this many seconds.
GENERATION_TTL_S = 5.0
GENERATIONS = web.AppKey("tv_generations", TtlCache[str, int | None])


def issue(response: web.StreamResponse, request: web.Request, session: Session) -> None:
    token = sign(request.app[SECRET_KEY], PURPOSE, f"{session.household}|{session.generation}")
    _set(response, request, COOKIE, token, MAX_AGE_S)


def forget(response: web.StreamResponse) -> None:
    response.del_cookie(COOKIE, path="/tv")


def set_box(response: web.StreamResponse, request: web.Request, secret: str) -> None:
    _set(response, request, BOX_COOKIE, secret, 86_400)


def _set(
    response: web.StreamResponse, request: web.Request, name: str, value: str, max_age: int
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/tv",
        httponly=True,
        samesite="Lax",
        secure=request.secure,
    )


async def current(request: web.Request) -> Session | None:
    """The household this box is paired with, if the cookie is genuine and current."""
    token = request.cookies.get(COOKIE)
    if not token or len(token) > 512:
        return None
    try:
        household, _, generation = unsign(request.app[SECRET_KEY], PURPOSE, token).partition("|")
        session = Session(household, int(generation))
    except (InvalidCredentials, ValueError):
        return None
    db = request.app[DATABASE]
    current_generation = await request.app[GENERATIONS].get(
        session.household,
        lambda: db.run_read(partial(pairing.generation, household=session.household)),
    )
    return session if current_generation == session.generation else None


async def required(request: web.Request) -> Session:
    """The session, or a redirect to the pairing page."""
    session = await current(request)
    if session is None:
        raise web.HTTPSeeOther("/tv/")
    return session


def csrf_token(request: web.Request, session: Session) -> str:
    return derive(
        request.app[SECRET_KEY], "csrf", session.household, str(session.generation), length=32
    )


async def check_csrf(request: web.Request, session: Session) -> dict[str, str]:
    """The posted form's text fields, if its CSRF token is this session's; 403 otherwise."""
    form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
    token = form.get("csrf", "")
    if not hmac.compare_digest(token.encode(), csrf_token(request, session).encode()):
        raise web.HTTPForbidden(text="The form has expired. Please go back and try again.")
    return form
