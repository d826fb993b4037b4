"""The one-key alarm on the TV: confirm, send, follow its state, cancel within the
grace period. Works without JavaScript (forms and a refreshing page)."""

from __future__ import annotations

import re
import secrets

from aiohttp import web

from stb_portal.tv import session as tv_session
from stb_portal.tv.render import by_path_id, page
from xueliang.alarms import HouseholdAlarm, RaiseRequest
from xueliang.errors import InvalidTransition
from xueliang.web import ALARMS

TV_KINDS = ("panic", "medical", "fire")
_NONCE = re.compile(r"[A-Za-z0-9_-]{8,64}")


async def confirm(request: web.Request) -> web.Response:
    """The red key (or the alarm tile) lands here; nothing is sent without OK."""
    session = await tv_session.required(request)
    return page(request, "tv/alarm_confirm.html", session=session, nonce=secrets.token_urlsafe(12))


async def send(request: web.Request) -> web.Response:
    session = await tv_session.required(request)
    form = await tv_session.check_csrf(request, session)
    kind = form.get("kind", "panic")
    nonce = form.get("nonce", "")
    if kind not in TV_KINDS or not _NONCE.fullmatch(nonce):
        raise web.HTTPBadRequest(text="Unknown alarm kind or damaged form.")
    # The nonce makes a form posted twice (an impatient second OK) one alarm, not two.
    request_ = RaiseRequest("tv", kind, household=session.household, message_id=nonce)  # type: ignore[arg-type]
    [raised] = await request.app[ALARMS].raise_many([request_])
    raise web.HTTPSeeOther(f"/tv/alarm/{raised.alarm}")


async def status(request: web.Request) -> web.Response:
    session = await tv_session.required(request)
    alarm = await _own_alarm(request, session.household)
    if alarm is None:
        return page(request, "tv/not_found.html", session=session, status=404)
    late = request.query.get("late") == "1"
    return page(request, "tv/alarm_status.html", session=session, alarm=alarm, late=late)


async def status_json(request: web.Request) -> web.Response:
    """What the page's script polls: a change of `version` means reload."""
    session = await tv_session.required(request)
    alarm = await _own_alarm(request, session.household)
    if alarm is None:
        raise web.HTTPNotFound()
    return web.json_response(
        {"state": alarm.state, "version": alarm.updated_at.isoformat()},
        headers={"Cache-Control": "no-store"},
    )


async def cancel(request: web.Request) -> web.Response:
    session = await tv_session.required(request)
    await tv_session.check_csrf(request, session)
    alarm = await _own_alarm(request, session.household)
    if alarm is None:
        return page(request, "tv/not_found.html", session=session, status=404)
    try:
        await request.app[ALARMS].act(
            alarm.id, "cancel", by=tv_session.actor(session), source="tv",
            household=session.household,
        )  # fmt: skip
    except InvalidTransition:
        raise web.HTTPSeeOther(f"/tv/alarm/{alarm.id}?late=1") from None
    raise web.HTTPSeeOther(f"/tv/alarm/{alarm.id}")


async def history(request: web.Request) -> web.Response:
    session = await tv_session.required(request)
    alarms = await request.app[ALARMS].household_alarms(session.household, limit=6)
    return page(request, "tv/alarms.html", session=session, alarms=alarms)


async def _own_alarm(request: web.Request, household: str) -> HouseholdAlarm | None:
    return await by_path_id(
        request, lambda ident: request.app[ALARMS].household_alarm(ident, household)
    )


def setup(app: web.Application) -> None:
    app.router.add_get("/tv/alarm", confirm, name="tv_alarm_confirm")
    app.router.add_post("/tv/alarm", send, name="tv_alarm_send")
    app.router.add_get("/tv/alarm/{id}.json", status_json, name="tv_alarm_json")
    app.router.add_get("/tv/alarm/{id}", status, name="tv_alarm")
    app.router.add_post("/tv/alarm/{id}/cancel", cancel, name="tv_alarm_cancel")
    app.router.add_get("/tv/alarms", history, name="tv_alarms")
