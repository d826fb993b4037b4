"""The staff console: sign-in, the live alarm board, one alarm with its actions and
notes, and the devices that need a visit. Server-rendered; `centre.js` adds the live
updates and the alarm sound, and every action also works as a plain form post."""

from __future__ import annotations

import logging
from functools import partial
from typing import cast
from urllib.parse import quote

from aiohttp import web

from stb_portal import auth, staff_actions
from stb_portal.centre.render import LANG_COOKIE, page, path_id
from stb_portal.i18n import LANGS
from stb_portal.keys import FEED
from xueliang import alarm_board, devices, geography, staff_sessions
from xueliang.alarms import Action
from xueliang.errors import Busy, InvalidCredentials, InvalidInput, InvalidTransition, Throttled
from xueliang.web import DATABASE, SETTINGS

log = logging.getLogger(__name__)

STAFF_ACTIONS = ("acknowledge", "dispatch", "resolve", "false_alarm")


async def login_form(request: web.Request) -> web.Response:
    if await auth.current(request) is not None:
        raise web.HTTPSeeOther(_next(request))
    return page(
        request, "centre/login.html", session=None, next=_next(request), problem=None,
        username="", retry_after=0,
    )  # fmt: skip


async def login(request: web.Request) -> web.Response:
    auth.same_site(request)  # no signing in from another site's form (login CSRF)
    form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
    username = form.get("username", "").strip()
    problem: str | None = None
    retry_after = 0
    try:
        signed_in = await auth.sign_in(request, username, form.get("password", ""), "console")
    except InvalidCredentials:
        problem = "wrong"
    except Throttled as e:
        problem, retry_after = "throttled", e.retry_after_s
    except Busy:
        problem, retry_after = "throttled", 5
    if problem is not None:
        return page(
            request, "centre/login.html", session=None, next=_next(request, form),
            problem=problem, retry_after=retry_after, username=username[:100],
            status=429 if problem == "throttled" else 401,
        )  # fmt: skip
    response = web.HTTPSeeOther(_next(request, form))
    auth.issue_cookie(response, request, signed_in.token, signed_in.expires_at)
    raise response


def _next(request: web.Request, form: dict[str, str] | None = None) -> str:
    """Where to go after signing in: a console page of this site, nothing else."""
    wanted = (form or {}).get("next") or request.query.get("next", "")
    if wanted.startswith("/centre/") and "//" not in wanted and "\\" not in wanted:
        return wanted
    return "/centre/"


async def logout(request: web.Request) -> web.Response:
    session = await auth.for_console(request)
    await auth.checked_form(request, session)
    await staff_sessions.sign_out(request.app[DATABASE], session, auth.client_address(request))
    auth.forget(request, request.cookies.get(auth.COOKIE, ""), "console")
    response = web.HTTPSeeOther("/centre/login")
    auth.forget_cookie(response)
    raise response


async def board(request: web.Request) -> web.Response:
    session = await auth.for_console(request)
    db = request.app[DATABASE]
    # Taken before the list: what changes while the page loads comes by the stream.
    last_event = request.app[FEED].cursor
    found = await db.run_read(
        partial(alarm_board.page, scope=session.scope, state="open", limit=alarm_board.MAX_LIMIT)
    )
    names = await db.run_read(partial(geography.village_names, scope=session.scope))
    return page(
        request, "centre/board.html", session=session, alarms=found.alarms, villages=names,
        last_event=last_event,
    )  # fmt: skip


async def alarm(request: web.Request) -> web.Response:
    session = await auth.for_console(request)
    ident = path_id(request)
    last_event = request.app[FEED].cursor
    found = await request.app[DATABASE].run_read(
        partial(alarm_board.detail, scope=session.scope, alarm_id=ident)
    )
    return page(
        request, "centre/alarm.html", session=session, detail=found, alarm=found.alarm,
        problem=request.query.get("problem"), actions=STAFF_ACTIONS, last_event=last_event,
    )  # fmt: skip


async def act(request: web.Request) -> web.Response:
    session = await auth.for_console(request)
    ident = path_id(request)
    form = await auth.checked_form(request, session)
    action = form.get("action", "")
    if action not in STAFF_ACTIONS:
        raise web.HTTPBadRequest(text="Unknown action.")
    note = form.get("note") or None
    problem = None
    try:
        await staff_actions.act(request, session, ident, cast(Action, action), note, "console")
    except (InvalidTransition, InvalidInput) as e:
        problem = str(e)
    raise web.HTTPSeeOther(_back_to(ident, problem))


async def note(request: web.Request) -> web.Response:
    session = await auth.for_console(request)
    ident = path_id(request)
    form = await auth.checked_form(request, session)
    problem = None
    try:
        await staff_actions.add_note(request, session, ident, form.get("note", ""))
    except InvalidInput as e:
        problem = str(e)
    raise web.HTTPSeeOther(_back_to(ident, problem))


def _back_to(ident: int, problem: str | None) -> str:
    suffix = f"?problem={quote(problem)}" if problem else ""
    return f"/centre/alarms/{ident}{suffix}"


async def devices_view(request: web.Request) -> web.Response:
    session = await auth.for_console(request)
    low = request.app[SETTINGS].bridge.low_battery
    found = await request.app[DATABASE].run_read(
        partial(devices.needing_attention, scope=session.scope, low_battery=low)
    )
    villages: dict[str, list[devices.NeedsAttention]] = {}
    for device in found:
        villages.setdefault(device.village_name, []).append(device)
    return page(request, "centre/devices.html", session=session, villages=villages, low_battery=low)


async def language(request: web.Request) -> web.Response:
    """Switch the console's language (a plain link; changes nothing but a cookie)."""
    lang = request.match_info["lang"]
    if lang not in LANGS:
        raise web.HTTPNotFound()
    response = web.HTTPSeeOther(_next(request))
    response.set_cookie(LANG_COOKIE, lang, max_age=400 * 86_400, path="/centre", samesite="Lax")
    raise response


async def board_json(request: web.Request) -> web.Response:
    """The open alarms in scope as the board script wants them (after a reset)."""
    session = await auth.for_console(request)
    found = await request.app[DATABASE].run_read(
        partial(alarm_board.page, scope=session.scope, state="open", limit=alarm_board.MAX_LIMIT)
    )
    return web.json_response({"alarms": found.alarms}, headers={"Cache-Control": "no-store"})


def setup(app: web.Application) -> None:
    add = app.router.add_route
    add("GET", "/centre", _to_board, name="centre_root")
    add("GET", "/centre/", board, name="centre_board")
    add("GET", "/centre/board.json", board_json, name="centre_board_json")
    add("GET", "/centre/login", login_form, name="centre_login_form")
    add("POST", "/centre/login", login, name="centre_login")
    add("POST", "/centre/logout", logout, name="centre_logout")
    add("GET", "/centre/alarms/{id}", alarm, name="centre_alarm")
    add("POST", "/centre/alarms/{id}/act", act, name="centre_alarm_act")
    add("POST", "/centre/alarms/{id}/note", note, name="centre_alarm_note")
    add("GET", "/centre/devices", devices_view, name="centre_devices")
    add("GET", "/centre/lang/{lang}", language, name="centre_language")


async def _to_board(_request: web.Request) -> web.Response:
    raise web.HTTPMovedPermanently("/centre/")
