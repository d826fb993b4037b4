"""`/api/v1`: the staff JSON API (sign-in, alarms in scope, actions, live events) and
its OpenAPI document. Mounted as a sub-application so that every answer under it,
refusals included, is JSON."""

from __future__ import annotations

import dataclasses
import json
import logging
from datetime import datetime
from functools import partial
from typing import Any

from aiohttp import web

from stb_portal import auth, staff_actions
from stb_portal.api import schemas
from stb_portal.api.events import stream_events
from stb_portal.api.openapi import Api, Handler, Reply, body, json_reply, query
from xueliang import alarm_board, staff_sessions, validation
from xueliang.alarm_board import AlarmDetail
from xueliang.alarm_payloads import iso
from xueliang.errors import (
    InvalidCredentials,
    InvalidInput,
    NotFound,
    Throttled,
    XueliangError,
)
from xueliang.web import DATABASE, STATUS_OF

log = logging.getLogger(__name__)

PREFIX = "/api/v1"
api = Api("Xueliang staff API", PREFIX, schemas.Error)
_ALARM_ID = {"id": {"type": "integer", "minimum": 1, "maximum": 2**53}}
_UNAUTHORISED = Reply("no valid session: sign in first", schemas.Error)
_BAD = Reply("invalid input; `field` names it", schemas.Error)
_NOT_FOUND = Reply("no such alarm in your scope", schemas.Error)


@api.route(
    "POST", "/session", name="api_sign_in", summary="Sign in; returns a Bearer token",
    body=schemas.SessionRequest, secured=False,
    replies={201: Reply("signed in", schemas.Token), 400: _BAD,
             401: Reply("wrong username or password", schemas.Error),
             429: Reply("too many failed attempts; see Retry-After", schemas.Error),
             503: Reply("too many sign-ins at once; retry in a few seconds", schemas.Error)},
)  # fmt: skip
async def sign_in(request: web.Request) -> web.Response:
    given = await body(request, schemas.SessionRequest)
    signed_in = await auth.sign_in(request, given.username, given.password, "api")
    return json_reply(schemas.Token(token=signed_in.token, expires_at=signed_in.expires_at), 201)


@api.route(
    "GET", "/session", name="api_me", summary="Who the token belongs to",
    replies={200: Reply("the signed-in staff member", schemas.Me), 401: _UNAUTHORISED},
)  # fmt: skip
async def me(request: web.Request) -> web.Response:
    session = await auth.for_api(request)
    person = session.staff
    return json_reply(
        schemas.Me(
            username=person.username, display_name=person.display_name, role=person.role,
            scope=person.scope, expires_at=session.expires_at,
        )
    )  # fmt: skip


@api.route(
    "DELETE", "/session", name="api_sign_out", summary="Sign out (the token stops working)",
    replies={204: Reply("signed out"), 401: _UNAUTHORISED, 403: Reply("missing CSRF token",
             schemas.Error)},
)  # fmt: skip
async def sign_out(request: web.Request) -> web.Response:
    session = await auth.for_api(request)
    await staff_sessions.sign_out(
        request.config_dict[DATABASE], session, auth.client_address(request)
    )
    token = request.headers.get("Authorization", "").partition(" ")[2].strip()
    auth.forget(request, token or request.cookies.get(auth.COOKIE, ""), session.kind)
    return web.Response(status=204)


@api.route(
    "GET", "/alarms", name="api_alarms", summary="Alarms in your scope, a page at a time",
    query=schemas.AlarmQuery,
    replies={200: Reply("a page of alarms", schemas.AlarmPage), 400: _BAD, 401: _UNAUTHORISED},
)  # fmt: skip
async def alarms(request: web.Request) -> web.Response:
    session = await auth.for_api(request)
    wanted = query(request, schemas.AlarmQuery)
    found = await request.config_dict[DATABASE].run_read(
        partial(alarm_board.page, scope=session.scope, state=wanted.state, limit=wanted.limit,
                cursor=wanted.cursor)
    )  # fmt: skip
    return web.json_response({"alarms": found.alarms, "next": found.next}, dumps=_dumps)


@api.route(
    "GET", "/alarms/{id}", name="api_alarm", summary="One alarm, with its history",
    path_params=_ALARM_ID,
    replies={200: Reply("the alarm", schemas.AlarmDetail), 401: _UNAUTHORISED, 404: _NOT_FOUND},
)  # fmt: skip
async def alarm(request: web.Request) -> web.Response:
    session = await auth.for_api(request)
    found = await request.config_dict[DATABASE].run_read(
        partial(alarm_board.detail, scope=session.scope, alarm_id=alarm_id(request))
    )
    return web.json_response(detail_json(found), dumps=_dumps)


@api.route(
    "POST", "/alarms/{id}/actions", name="api_alarm_action",
    summary="Acknowledge, dispatch, resolve or mark a false alarm",
    path_params=_ALARM_ID, body=schemas.ActionRequest,
    replies={200: Reply("the alarm's state after the action", schemas.ActionResult),
             400: _BAD, 401: _UNAUTHORISED,
             403: Reply("missing CSRF token (cookie sessions)", schemas.Error),
             404: _NOT_FOUND,
             409: Reply("the alarm's state does not allow it", schemas.Error)},
)  # fmt: skip
async def act(request: web.Request) -> web.Response:
    session = await auth.for_api(request)
    ident = alarm_id(request)
    given = await body(request, schemas.ActionRequest)
    state = await staff_actions.act(request, session, ident, given.action, given.note, "api")
    return json_reply(schemas.ActionResult(alarm=ident, state=state))


@api.route(
    "GET", "/events", name="api_events",
    summary="Server-Sent Events: every alarm change in your scope (resume with Last-Event-ID)",
    replies={200: Reply("an endless event stream", media_type="text/event-stream"),
             401: _UNAUTHORISED,
             503: Reply("events are not available yet (starting up)", schemas.Error)},
)  # fmt: skip
async def events(request: web.Request) -> web.StreamResponse:
    return await stream_events(request, await auth.for_api(request))


@api.route(
    "GET", "/openapi.json", name="api_openapi", summary="This document", secured=False,
    replies={200: Reply("the OpenAPI 3.1 document")},
)  # fmt: skip
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(request.app[DOCUMENT])


DOCUMENT = web.AppKey("openapi_document", dict[str, Any])


def alarm_id(request: web.Request) -> int:
    text = request.match_info["id"]
    found = validation.row_id(text)
    if found is None:
        raise NotFound("alarm", text[:20])
    return found


def detail_json(found: AlarmDetail) -> dict[str, Any]:
    return {
        **found.alarm,
        "history": [dataclasses.asdict(h) for h in found.history],
        "members": found.members,
        "village_name": found.village_name,
        "town_name": found.town_name,
        "devices": [dataclasses.asdict(d) for d in found.devices],
        "camera_list": [dataclasses.asdict(c) for c in found.cameras],
        **found.handled,
    }


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_moment)


def _moment(value: object) -> str | None:
    if isinstance(value, datetime):
        return iso(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


@web.middleware
async def _json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every refusal under /api/v1 is `{"error", "field"?}` with its status."""
    try:
        return await handler(request)
    except web.HTTPException as e:
        if e.content_type == "application/json" or e.status < 400:
            raise
        return _error(e.status, e.reason, headers=e.headers)
    except Throttled as e:
        return _error(429, str(e), headers={"Retry-After": str(e.retry_after_s)})
    except InvalidCredentials as e:
        return _error(401, str(e))
    except InvalidInput as e:
        return _error(400, e.reason, field=e.field)
    except XueliangError as e:
        status = next((s for kind, s in STATUS_OF.items() if isinstance(e, kind)), None)
        if status is None:
            raise
        return _error(status, str(e), headers={"Retry-After": "5"} if status == 503 else None)


def _error(
    status: int, message: str, *, field: str | None = None, headers: Any = None
) -> web.Response:
    kept = {k: v for k, v in (headers or {}).items() if k in ("Retry-After", "WWW-Authenticate",
                                                                 "Allow")}  # fmt: skip
    return web.Response(
        text=schemas.Error(error=message, field=field).model_dump_json(exclude_none=True),
        status=status,
        content_type="application/json",
        headers=kept,
    )


def setup(app: web.Application) -> None:
    sub = web.Application(middlewares=[_json_errors])
    api.install(sub)
    sub[DOCUMENT] = api.document()
    app.add_subapp(PREFIX, sub)
