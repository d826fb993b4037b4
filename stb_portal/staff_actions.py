"""Staff acting on alarms, the same way from the console and the API: the change and
its audit entry in one transaction, and refused attempts audited too (`refused`, which
every console page that changes something uses)."""

from __future__ import annotations

from dataclasses import replace

from aiohttp import web

from stb_portal import auth
from xueliang import audit
from xueliang.alarms import Action, State
from xueliang.errors import Conflict, InvalidInput, NotFound
from xueliang.staff_sessions import StaffSession
from xueliang.web import ALARMS, DATABASE


async def act(
    request: web.Request, session: StaffSession, alarm_id: int, action: Action,
    note: str | None, source: str,
) -> State:  # fmt: skip
    entry = auth.entry(request, session, f"alarm.{action}", str(alarm_id), note)
    try:
        return await request.config_dict[ALARMS].act(
            alarm_id, action, by=auth.shown_name(session), source=source, note=note,
            scope=session.scope, audit_entry=entry,
        )  # fmt: skip
    except (Conflict, NotFound, InvalidInput) as e:
        await refused(request, entry, e)
        raise


async def add_note(request: web.Request, session: StaffSession, alarm_id: int, note: str) -> None:
    entry = auth.entry(request, session, "alarm.note", str(alarm_id))
    try:
        await request.config_dict[ALARMS].add_note(
            alarm_id, note, by=auth.shown_name(session), scope=session.scope, audit_entry=entry
        )
    except (NotFound, InvalidInput) as e:
        await refused(request, entry, e)
        raise


async def refused(request: web.Request, entry: audit.Entry, error: Exception | str) -> None:
    """An attempt that changed nothing, on record as `<action>.refused` with the reason,
    in a transaction of its own."""
    attempt = replace(entry, action=f"{entry.action}.refused"[:32], detail=str(error))
    await audit.record(request.config_dict[DATABASE], attempt)
