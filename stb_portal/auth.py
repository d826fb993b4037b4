"""Staff authentication: the console's session cookie, the API's Bearer tokens, CSRF
for console forms and for cookie-authenticated API writes, and the audit entries of
what staff do."""

from __future__ import annotations

import hmac
from datetime import datetime
from urllib.parse import quote, urlsplit

from aiohttp import web
from prometheus_client import Counter

from xueliang import audit, staff_sessions
from xueliang.errors import InvalidCredentials, Throttled
from xueliang.signing import derive
from xueliang.staff_sessions import Kind, StaffSession
from xueliang.ttl_cache import TtlCache
from xueliang.web import DATABASE, METRICS, SECRET_KEY

COOKIE = "xl_staff"
CSRF_HEADER = "X-CSRF-Token"
# A signed-out or disabled account stops working in every process within this time.
SESSION_TTL_S = 5.0
SESSIONS = web.AppKey("staff_sessions", TtlCache[tuple[str, str], StaffSession | None])
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


SIGN_INS = web.AppKey("staff_sign_ins", Counter)


def setup(app: web.Application) -> None:
    app[SESSIONS] = TtlCache(SESSION_TTL_S)
    app[SIGN_INS] = Counter(
        "xl_staff_sign_ins",
        "Staff sign-in attempts by result (ok, wrong, throttled).",
        ["result"],
        registry=app[METRICS].registry,
    )


async def sign_in(
    request: web.Request, username: str, password: str, kind: Kind
) -> staff_sessions.SignedIn:
    """Sign in from this request's address, counting the result."""
    counter = request.config_dict[SIGN_INS]
    try:
        signed_in = await staff_sessions.sign_in(
            request.config_dict[DATABASE], username, password, kind=kind,
            address=client_address(request),
        )  # fmt: skip
    except InvalidCredentials:
        counter.labels("wrong").inc()
        raise
    except Throttled:
        counter.labels("throttled").inc()
        raise
    counter.labels("ok").inc()
    return signed_in


def client_address(request: web.Request) -> str:
    return request.remote or ""


async def current(request: web.Request) -> StaffSession | None:
    """The staff session of a Bearer token, else of the console cookie."""
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        return await _lookup(request, token.strip(), "api")
    cookie = request.cookies.get(COOKIE)
    return await _lookup(request, cookie, "console") if cookie else None


async def _lookup(request: web.Request, token: str, kind: Kind) -> StaffSession | None:
    db = request.config_dict[DATABASE]
    return await request.config_dict[SESSIONS].get(
        (kind, token), lambda: staff_sessions.session(db, token, kind)
    )


def forget(request: web.Request, token: str, kind: Kind) -> None:
    request.config_dict[SESSIONS].forget((kind, token))


async def for_api(request: web.Request) -> StaffSession:
    """The caller's session; 401 without one. Writes made with the console cookie must
    also carry the page's CSRF token in a header (a Bearer token is never sent by a
    browser on its own, so it needs none)."""
    session = await current(request)
    if session is None:
        raise web.HTTPUnauthorized(
            text='{"error": "sign in first (POST /api/v1/session), then send '
            'Authorization: Bearer <token>"}',
            content_type="application/json",
            headers={"WWW-Authenticate": 'Bearer realm="xueliang"'},
        )
    if session.kind == "console" and request.method not in _SAFE:
        given = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(given.encode(), csrf_token(request, session).encode()):
            raise web.HTTPForbidden(
                text='{"error": "missing or wrong X-CSRF-Token"}', content_type="application/json"
            )
    return session


async def for_console(request: web.Request) -> StaffSession:
    """The signed-in staff member; otherwise off to the sign-in page and back."""
    session = await current(request)
    if session is None or session.kind != "console":
        raise web.HTTPSeeOther(f"/centre/login?next={_local_path(request.path_qs)}")
    return session


def _local_path(path: str) -> str:
    return quote(path if path.startswith("/centre/") else "/centre/", safe="")


def csrf_token(request: web.Request, session: StaffSession) -> str:
    return derive(request.config_dict[SECRET_KEY], "staff-csrf", session.token_hash, length=32)


async def checked_form(request: web.Request, session: StaffSession) -> dict[str, str]:
    """The posted form's text fields, when its CSRF token is this session's and it
    comes from this site; 403 otherwise."""
    same_site(request)
    form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
    token = form.get("csrf", "")
    if not hmac.compare_digest(token.encode(), csrf_token(request, session).encode()):
        raise web.HTTPForbidden(text="The form has expired. Go back, reload and try again.")
    return form


def same_site(request: web.Request) -> None:
    """403 for a form posted from another site (when the browser says so)."""
    origin = request.headers.get("Origin")
    # Hosts, not schemes: behind a TLS proxy the request arrives here as plain http.
    if origin is not None and urlsplit(origin).netloc != request.host:
        raise web.HTTPForbidden(text="This form was sent from another site.")


def issue_cookie(
    response: web.StreamResponse, request: web.Request, token: str, expires_at: datetime
) -> None:
    response.set_cookie(
        COOKIE,
        token,
        expires=expires_at.strftime("%a, %d %b %Y %H:%M:%S GMT"),
        path="/",
        httponly=True,
        samesite="Strict",
        secure=request.secure,
    )


def forget_cookie(response: web.StreamResponse) -> None:
    response.del_cookie(COOKIE, path="/")


def entry(
    request: web.Request, session: StaffSession, action: str, target: str = "",
    detail: str | None = None,
) -> audit.Entry:  # fmt: skip
    return audit.Entry(
        actor=session.staff.username,
        staff_id=session.staff.id,
        action=action,
        target=target,
        address=client_address(request),
        detail=detail,
    )


def shown_name(session: StaffSession) -> str:
    """How households and colleagues see who acted (the account's name, if set)."""
    return session.staff.display_name or session.staff.username
