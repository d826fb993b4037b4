"""A paired box's session: a signed, HttpOnly cookie naming the household and the
pairing generation; forms carry a CSRF token derived from the same.

A box sends the same cookies with every page, so what can be worked out from them
alone is worked out once: the Cookie header's parse, and a genuine token's signature
check (a signature cannot become wrong). Whether the generation is still current is
asked of the database at most every `GENERATION_TTL_S` seconds."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from functools import partial

from aiohttp import hdrs, web

from xueliang import pairing
from xueliang.errors import InvalidCredentials
from xueliang.pairing import Session
from xueliang.signing import derive, sign, unsign
from xueliang.ttl_cache import MISSING, TtlCache
from xueliang.web import DATABASE, SECRET_KEY

COOKIE = "xl_tv"
BOX_COOKIE = "xl_box"
MAX_AGE_S = 400 * 86_400  # the longest a browser keeps a cookie
PURPOSE = "tv-session"
# Checked on every page; a re-issued link unpairs old boxes within this many seconds.
GENERATION_TTL_S = 5.0
GENERATIONS = web.AppKey("tv_generations", TtlCache[str, int | None])
# Tokens whose signature this process has checked (only genuine ones: a forger cannot
# fill it), with what they say.
TOKENS = web.AppKey("tv_tokens", dict[str, Session])
MAX_TOKENS = 10_000
# Cookie headers parsed recently; longer headers are parsed each time (bounded memory).
_PARSED: dict[str, Mapping[str, str]] = {}
_MAX_PARSED = 2_000
_MAX_PARSED_LENGTH = 1_000


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


def cookies(request: web.Request) -> Mapping[str, str]:
    """`request.cookies`, parsed once per distinct Cookie header rather than per page."""
    raw = request.headers.get(hdrs.COOKIE, "")
    parsed = _PARSED.get(raw)
    if parsed is None:
        parsed = request.cookies
        if len(raw) <= _MAX_PARSED_LENGTH:
            if len(_PARSED) >= _MAX_PARSED:
                _PARSED.clear()
            _PARSED[raw] = parsed
    return parsed


async def current(request: web.Request) -> Session | None:
    """The household this box is paired with, if the cookie is genuine and current."""
    token = cookies(request).get(COOKIE)
    if not token or len(token) > 512:
        return None
    app = request.app
    verified = app[TOKENS]
    session = verified.get(token)
    if session is None:
        try:
            household, _, generation = unsign(app[SECRET_KEY], PURPOSE, token).partition("|")
            session = Session(household, int(generation))
        except (InvalidCredentials, ValueError):
            return None
        if len(verified) >= MAX_TOKENS:
            verified.clear()
        verified[token] = session
    generations = app[GENERATIONS]
    current_generation = generations.peek(session.household)
    if current_generation is MISSING:
        db = app[DATABASE]
        current_generation = await generations.get(
            session.household,
            partial(db.run_read, partial(pairing.generation, household=session.household)),
        )
    return session if current_generation == session.generation else None


async def required(request: web.Request) -> Session:
    """The session, or a redirect to the pairing page."""
    session = await current(request)
    if session is None:
        raise web.HTTPSeeOther("/tv/")
    return session


def actor(session: Session) -> str:
    """Who a household's action is recorded as (alarms, bookings, the audit log)."""
    return f"household {session.household}"


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
