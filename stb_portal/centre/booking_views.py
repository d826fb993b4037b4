"""The family lawyer's bookings in the staff console: a village's week and the area's
bookings as CSV, one booking with its actions (done or no-show, cancel, notes). Every
change is written with its audit entry in one transaction; refused attempts are
audited too."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import TypeVar

from aiohttp import web
from sqlalchemy import Connection

from stb_portal import auth
from stb_portal.centre.lawyer_form import (
    Problem,
    local_span,
    monday_of,
    refusal,
    refusal_status,
)
from stb_portal.centre.render import csv_response, page, path_id
from stb_portal.centre.stats_views import period
from stb_portal.staff_actions import refused
from xueliang import audit, bookings, geography, households, lawyers
from xueliang.errors import Conflict, InvalidInput, NotFound
from xueliang.geography import LOCAL_TIME, Scope
from xueliang.staff_sessions import StaffSession
from xueliang.storage.types import utcnow
from xueliang.web import DATABASE

T = TypeVar("T")


# --- a village's bookings and the CSV -------------------------------------------------


def _village_week(
    conn: Connection, scope: Scope, village: str, since: datetime, until: datetime
) -> tuple[dict[str, str], list[lawyers.Lawyer], list[bookings.Booking]]:
    names = geography.village_names(conn, scope)
    if village and village not in names:
        raise NotFound("village", village)
    found = bookings.calendar(conn, scope, since, until, village=village) if village else []
    return names, lawyers.in_scope(conn, scope), found


async def village_bookings(request: web.Request) -> web.Response:
    session = await auth.for_console(request)
    problem, status = None, 200
    try:
        monday = monday_of(request.query.get("week"))
    except InvalidInput:
        monday, problem, status = monday_of(None), Problem("week"), 400
    village = request.query.get("village", "")
    if not village and session.staff.role == "village":
        village = session.staff.scope
    since, until = local_span(monday, 7)
    try:
        names, serving, found = await request.app[DATABASE].run_read(
            partial(_village_week, scope=session.scope, village=village, since=since, until=until)
        )
    except NotFound as e:
        raise web.HTTPNotFound() from e
    days = [monday + timedelta(days=n) for n in range(7)]
    today = datetime.now(LOCAL_TIME).date()
    following = (today.replace(day=1) + timedelta(days=31)).replace(day=1)
    return page(
        request, "centre/bookings.html", session=session, village=village, villages=names,
        lawyers=serving, monday=monday, prev=monday - timedelta(days=7),
        next=monday + timedelta(days=7), this_week=monday_of(None),
        days=[(day, [b for b in found if b.local_start.date() == day]) for day in days],
        first=f"{today:%Y-%m}", last=f"{following:%Y-%m}", problem=problem, status=status,
    )  # fmt: skip


async def bookings_csv(request: web.Request) -> web.Response:
    session = await auth.for_console(request)
    try:
        first, last, since, until = period(request)
    except InvalidInput as e:
        raise web.HTTPBadRequest(text=str(e)) from e
    lawyer = request.query.get("lawyer") or None
    db = request.app[DATABASE]
    try:
        body = await db.run_read(
            partial(_csv, scope=session.scope, since=since, until=until, lawyer=lawyer)
        )
    except NotFound as e:
        raise web.HTTPNotFound() from e
    await audit.record(
        db, auth.entry(request, session, "export.bookings_csv", f"{first}..{last}", lawyer)
    )
    name = f"bookings-{session.staff.scope}-{first}-{last}{'-' + lawyer if lawyer else ''}.csv"
    return csv_response(body, name)


def _csv(
    conn: Connection, scope: Scope, since: datetime, until: datetime, lawyer: str | None
) -> str:
    if lawyer is not None:
        lawyers.get(conn, lawyer, scope)  # another area's lawyer is not found
    return bookings.calendar_csv(conn, scope, since, until, lawyer)


# --- one booking ----------------------------------------------------------------------


def _booking_detail(
    conn: Connection, id: int, scope: Scope
) -> tuple[bookings.Booking, households.Household | None, list[bookings.Note]]:
    found = bookings.get(conn, id, scope=scope)
    return found, households.find(conn, found.household), bookings.notes(conn, id)


async def booking_page(request: web.Request) -> web.Response:
    session = await auth.for_console(request)
    return await _booking(request, session, path_id(request))


async def _booking(
    request: web.Request, session: StaffSession, ident: int, *,
    problem: Problem | None = None, status: int = 200, form: dict[str, str] | None = None,
) -> web.Response:  # fmt: skip
    try:
        found, home, notes = await request.app[DATABASE].run_read(
            partial(_booking_detail, id=ident, scope=session.scope)
        )
    except NotFound as e:
        raise web.HTTPNotFound() from e
    return page(
        request, "centre/booking.html", session=session, booking=found, household=home,
        notes=notes, reasons=bookings.REASONS, problem=problem, now=utcnow(),
        note=(form or {}).get("note", ""), explanation=(form or {}).get("explanation", ""),
        monday=found.local_start.date() - timedelta(days=found.local_start.weekday()),
        status=status,
    )  # fmt: skip


async def close_booking(request: web.Request) -> web.Response:
    """Record how the consultation went: done, or the household did not come."""
    session, ident, form = await _posted(request)
    outcome = form.get("outcome", "")
    action = f"booking.{outcome}" if outcome in bookings.OUTCOMES else "booking.close"
    work = partial(bookings.close, id=ident, outcome=outcome, by=auth.shown_name(session),
                   now=utcnow(), scope=session.scope)  # fmt: skip
    entry = auth.entry(request, session, action, str(ident))
    return await _change(request, session, ident, entry, work, form, too_late="not_begun")


async def cancel_booking(request: web.Request) -> web.Response:
    session, ident, form = await _posted(request)
    reason = form.get("reason", "")
    work = partial(_cancel, id=ident, reason=reason, note=form.get("explanation", ""),
                   by=auth.shown_name(session), scope=session.scope)  # fmt: skip
    entry = auth.entry(request, session, "booking.cancel", str(ident), reason[:40])
    return await _change(request, session, ident, entry, work, form, too_late="over")


def _cancel(conn: Connection, id: int, reason: str, note: str, by: str, scope: Scope) -> None:
    """Cancel, and keep the staff's explanation (if any) as a note of the booking."""
    now = utcnow()
    bookings.cancel(conn, id, reason=reason, by=by, now=now, scope=scope)
    if note.strip():
        bookings.add_note(conn, id, note, by=by, now=now, scope=scope)


async def note_booking(request: web.Request) -> web.Response:
    session, ident, form = await _posted(request)
    work = partial(bookings.add_note, id=ident, text=form.get("note", ""),
                   by=auth.shown_name(session), now=utcnow(), scope=session.scope)  # fmt: skip
    entry = auth.entry(request, session, "booking.note", str(ident))
    return await _change(request, session, ident, entry, work, form, too_late="over")


async def _posted(request: web.Request) -> tuple[StaffSession, int, dict[str, str]]:
    session = await auth.for_console(request)
    ident = path_id(request)
    return session, ident, await auth.checked_form(request, session)


async def _change(
    request: web.Request, session: StaffSession, ident: int, entry: audit.Entry,
    work: Callable[[Connection], object], form: dict[str, str], too_late: str,
) -> web.Response:  # fmt: skip
    try:
        await request.app[DATABASE].run_write(partial(_audited, work=work, entry=entry))
    except NotFound as e:
        await refused(request, entry, e)
        raise web.HTTPNotFound() from e
    except (Conflict, InvalidInput) as e:
        await refused(request, entry, e)
        return await _booking(
            request, session, ident, problem=refusal(e, too_late), status=refusal_status(e),
            form=form,
        )  # fmt: skip
    raise web.HTTPSeeOther(f"/centre/bookings/{ident}")


def _audited(conn: Connection, work: Callable[[Connection], T], entry: audit.Entry) -> T:
    """`work`, then its audit entry, in the same transaction."""
    done = work(conn)
    audit.write(conn, entry)
    return done


def setup(app: web.Application) -> None:
    add = app.router.add_route
    add("GET", "/centre/bookings", village_bookings, name="centre_bookings")
    add("GET", "/centre/bookings.csv", bookings_csv, name="centre_bookings_csv")
    add("GET", "/centre/bookings/{id}", booking_page, name="centre_booking")
    add("POST", "/centre/bookings/{id}/close", close_booking, name="centre_booking_close")
    add("POST", "/centre/bookings/{id}/cancel", cancel_booking, name="centre_booking_cancel")
    add("POST", "/centre/bookings/{id}/note", note_booking, name="centre_booking_note")
