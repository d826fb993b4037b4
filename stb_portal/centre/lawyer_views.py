"""The family lawyer in the staff console: the lawyers serving the area, a lawyer's week
with booking on behalf of a household, and (town and county staff) each lawyer's
details, weekly plan and absences. A village's bookings and one booking are in
`booking_views`. Every change is written with its audit entry in one transaction;
refused attempts are audited too."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

from aiohttp import web
from sqlalchemy import Connection

from stb_portal import auth
from stb_portal.centre.lawyer_form import (
    Problem,
    absence_input,
    duty_summary,
    field_of,
    lawyer_data,
    local_span,
    monday_of,
    refusal,
    refusal_status,
    slot_start,
    values_from,
    values_of,
)
from stb_portal.centre.render import page
from stb_portal.staff_actions import refused
from xueliang import audit, bookings, geography, lawyers, validation
from xueliang.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from xueliang.geography import LOCAL_TIME, LocalSpan, Scope
from xueliang.staff_sessions import StaffSession
from xueliang.storage.types import utcnow
from xueliang.web import DATABASE

# Staff book for a household that calls or comes in; "tv" is the household's own.
STAFF_CHANNELS = ("phone", "visit")
ABSENCES_AHEAD = timedelta(days=366)


# --- the lawyer's week ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cell(LocalSpan):
    """A line of a day in a lawyer's week: a booking of the area, or a slot of the plan
    without one: `free`, `taken` (by a household outside the area), `absent`, `past`,
    or `later` (beyond the booking window)."""

    starts_at: datetime
    ends_at: datetime
    state: str
    village: str | None
    booking: bookings.Booking | None = None
    away: bool = False  # a booking while the lawyer is absent: the household must know


def week_cells(
    lawyer: lawyers.Lawyer, monday: date, booked: list[bookings.Booking], held: set[datetime],
    away: list[lawyers.Absence], now: datetime,
) -> list[tuple[date, list[Cell]]]:  # fmt: skip
    """The week day by day: the area's live bookings, and every slot of the plan that
    none of them overlaps (a booking made before the plan changed keeps its line)."""

    def absent(start: datetime, end: datetime) -> bool:
        return any(a.covers(start, end) for a in away)

    cells = [
        Cell(b.starts_at, b.ends_at, "booked", b.village, b, absent(b.starts_at, b.ends_at))
        for b in booked
    ]
    latest = now + timedelta(days=lawyer.window_days)
    for slot in lawyers.plan_slots(lawyer, monday, monday + timedelta(days=6)):
        if any(b.starts_at < slot.ends_at and slot.starts_at < b.ends_at for b in booked):
            continue
        if any(unit in held for unit in lawyers.units(slot.starts_at, slot.ends_at)):
            state = "taken"
        elif absent(slot.starts_at, slot.ends_at):
            state = "absent"
        elif slot.starts_at <= now:
            state = "past"
        else:
            state = "later" if slot.starts_at > latest else "free"
        cells.append(Cell(slot.starts_at, slot.ends_at, state, slot.village))
    cells.sort(key=lambda c: c.starts_at)
    days = [monday + timedelta(days=n) for n in range(7)]
    return [(day, [c for c in cells if c.local_start.date() == day]) for day in days]


def _lawyer_week(
    conn: Connection, id: str, scope: Scope, monday: date, now: datetime
) -> tuple[lawyers.Lawyer, list[tuple[date, list[Cell]]], dict[str, str]]:
    lawyer = lawyers.get(conn, id, scope)
    since, until = local_span(monday, 7)
    booked = bookings.calendar(conn, scope, since, until, lawyer=id, live_only=True)
    held = lawyers.busy(conn, id, since, until)
    away = lawyers.absences(conn, id, monday, monday + timedelta(days=6))
    days = week_cells(lawyer, monday, booked, held, away, now)
    return lawyer, days, geography.village_names(conn, scope)


async def lawyer_calendar(request: web.Request) -> web.Response:
    session = await auth.for_console(request)
    try:
        monday = monday_of(request.query.get("week"))
    except InvalidInput:  # the current week, and what was wrong with the link
        return await _calendar(
            request, session, monday_of(None), problem=Problem("week"), status=400
        )
    return await _calendar(request, session, monday)


async def _calendar(
    request: web.Request, session: StaffSession, monday: date, *,
    problem: Problem | None = None, status: int = 200, form: dict[str, str] | None = None,
) -> web.Response:  # fmt: skip
    db = request.app[DATABASE]
    now = utcnow()
    try:
        lawyer, days, names = await db.run_read(
            partial(_lawyer_week, id=request.match_info["id"], scope=session.scope,
                    monday=monday, now=now)
        )  # fmt: skip
    except NotFound as e:
        raise web.HTTPNotFound() from e
    query = request.query.get("q", "").strip()
    choices: list[tuple[str, str, str]] = []
    if query and problem is None:
        try:
            choices = await db.run_read(
                partial(bookings.household_choices, scope=session.scope, query=query)
            )
        except InvalidInput as e:
            problem, status = Problem("invalid", str(e)), 400
    if form is None:
        form = {"household": request.query.get("household", "")[:64], "topic": "",
                "channel": STAFF_CHANNELS[0]}  # fmt: skip
    return page(
        request, "centre/lawyer_calendar.html", session=session, lawyer=lawyer, days=days,
        villages=names, monday=monday, prev=monday - timedelta(days=7),
        next=monday + timedelta(days=7), this_week=monday_of(None), query=query[:64],
        choices=choices, form=form, problem=problem, topics=bookings.TOPICS,
        channels=STAFF_CHANNELS, can_edit=can_edit(session), status=status,
    )  # fmt: skip


async def book(request: web.Request) -> web.Response:
    """Book a free slot for a household that called or came in."""
    session = await auth.for_console(request)
    ident = request.match_info["id"]
    form = await auth.checked_form(request, session)
    household = form.get("household", "").strip()
    kept = {"household": household[:64], "topic": form.get("topic", "")[:32],
            "channel": form.get("channel", "")[:32]}  # fmt: skip
    entry = auth.entry(
        request, session, "booking.book", ident,
        f"{household[:64]} {form.get('starts_at', '')[:40]} {kept['channel']} {kept['topic']}",
    )  # fmt: skip
    try:
        monday = monday_of(form.get("week"))
    except InvalidInput:
        monday = monday_of(None)
    db = request.app[DATABASE]
    try:
        await db.run_read(partial(lawyers.get, id=ident, scope=session.scope))
    except NotFound as e:
        await refused(request, entry, e)
        raise web.HTTPNotFound() from e
    try:
        if kept["channel"] not in STAFF_CHANNELS:
            raise InvalidInput("channel", "must be phone or visit")
        made = await db.run_write(
            partial(_book, entry=entry, lawyer=ident, household=household,
                    starts_at=slot_start(form.get("starts_at", "")), topic=kept["topic"],
                    channel=kept["channel"], by=auth.shown_name(session), scope=session.scope)
        )  # fmt: skip
    except NotFound as e:
        await refused(request, entry, e)
        if e.kind == "household":  # another area's household is not found, as ids are
            problem, status = Problem("household", household[:64]), 404
        else:
            problem, status = Problem("not_served"), 400
    except (Conflict, InvalidInput) as e:
        await refused(request, entry, e)
        problem, status = refusal(e, "too_soon"), refusal_status(e)
    else:
        raise web.HTTPSeeOther(f"/centre/bookings/{made.id}")
    return await _calendar(request, session, monday, problem=problem, status=status, form=kept)


def _book(conn: Connection, entry: audit.Entry, **booking: Any) -> bookings.Booking:
    made = bookings.book(conn, now=utcnow(), **booking)
    audit.write(conn, replace(entry, target=str(made.id)))
    return made


# --- the lawyers and their management (town and county staff) ---------------------


def can_edit(session: StaffSession) -> bool:
    """Town and county staff manage lawyers; a village's staff see and book."""
    return session.staff.role in ("town", "county")


def _put_lawyer(
    conn: Connection, data: dict[str, Any], creating: bool, scope: Scope, entry: audit.Entry
) -> None:
    """Store the lawyer with its audit entry: a new one, or one whose villages all lie
    in `scope` (a lawyer shared with another area is the county's to change)."""
    if creating:
        if lawyers.find(conn, data["id"]) is not None:
            raise AlreadyExists("lawyer", data["id"])
    else:
        lawyers.get(conn, data["id"], scope, whole=True)
    checked = lawyers.checked(data)
    lawyers.put(conn, checked, utcnow())
    detail = f"{'created' if creating else 'updated'}: {','.join(checked.villages)}"
    audit.write(conn, replace(entry, detail=detail))


def _area_lawyers(conn: Connection, scope: Scope) -> tuple[list[lawyers.Lawyer], dict[str, str]]:
    return lawyers.in_scope(conn, scope), geography.village_names(conn, scope)


async def lawyers_page(request: web.Request) -> web.Response:
    session = await auth.for_console(request)
    return await _lawyer_list(request, session)


async def _lawyer_list(
    request: web.Request, session: StaffSession, problem: Problem | None = None,
    status: int = 200,
) -> web.Response:  # fmt: skip
    found, names = await request.app[DATABASE].run_read(partial(_area_lawyers, scope=session.scope))
    return page(
        request, "centre/lawyers.html", session=session, lawyers=found, villages=names,
        summary=duty_summary, can_edit=can_edit(session), problem=problem, status=status,
    )  # fmt: skip


async def _manageable(
    request: web.Request, session: StaffSession, ident: str | None, entry: audit.Entry | None
) -> web.Response | None:
    """None when `session` may change lawyer `ident` (or create one); otherwise 404 for
    a lawyer outside the area, or the list with a 403 for a village's staff."""
    if ident is not None:
        try:
            managed = await request.app[DATABASE].run_read(
                partial(_managed, id=ident, scope=session.scope)
            )
        except NotFound as e:
            if entry is not None:
                await refused(request, entry, e)
            raise web.HTTPNotFound() from e
        if can_edit(session) and not managed:
            if entry is not None:
                await refused(request, entry, "the lawyer also serves villages outside the area")
            return await _lawyer_list(request, session, Problem("shared"), 403)
    if can_edit(session):
        return None
    if entry is not None:
        await refused(request, entry, "village staff may not change lawyers")
    return await _lawyer_list(request, session, Problem("forbidden"), 403)


def _managed(conn: Connection, id: str, scope: Scope) -> bool:
    """Whether every village of lawyer `id` lies in `scope` (NotFound when none does)."""
    return lawyers.manages(conn, lawyers.get(conn, id, scope), scope)


def _edit_context(
    conn: Connection, id: str | None, scope: Scope, today: date
) -> tuple[lawyers.Lawyer | None, dict[str, str], list[lawyers.Absence]]:
    names = geography.village_names(conn, scope)
    if id is None:
        return None, names, []
    away = lawyers.absences(conn, id, today, today + ABSENCES_AHEAD)
    return lawyers.get(conn, id, scope, whole=True), names, away


async def _edit(
    request: web.Request, session: StaffSession, ident: str | None, *,
    values: dict[str, Any] | None = None, errors: dict[str, Problem] | None = None,
    absence: dict[str, str] | None = None, absence_problem: Problem | None = None,
    status: int = 200,
) -> web.Response:  # fmt: skip
    try:
        lawyer, names, away = await request.app[DATABASE].run_read(
            partial(_edit_context, id=ident, scope=session.scope,
                    today=datetime.now(LOCAL_TIME).date())
        )  # fmt: skip
    except NotFound as e:
        raise web.HTTPNotFound() from e
    return page(
        request, "centre/lawyer_edit.html", session=session, lawyer=lawyer,
        values=values or values_of(lawyer), errors=errors or {}, villages=names,
        absences=away, absence=absence or dict.fromkeys(("day", "from", "to", "reason"), ""),
        absence_problem=absence_problem, status=status,
    )  # fmt: skip


async def lawyer_form(request: web.Request) -> web.Response:
    session = await auth.for_console(request)
    ident = request.match_info.get("id")
    if (refusal := await _manageable(request, session, ident, None)) is not None:
        return refusal
    return await _edit(request, session, ident)


async def save_lawyer(request: web.Request) -> web.Response:
    session = await auth.for_console(request)
    ident = request.match_info.get("id")
    form = await auth.checked_form(request, session)
    values = values_from(form)
    target = ident or values["id"].strip()[:64]
    entry = auth.entry(request, session, "lawyer.put", target)
    if (refusal := await _manageable(request, session, ident, entry)) is not None:
        return refusal
    db = request.app[DATABASE]
    ours = set(await db.run_read(partial(geography.village_names, scope=session.scope)))
    data, errors = lawyer_data({**values, "id": target}, ours)
    status = 400
    if not errors:
        try:
            await db.run_write(
                partial(_put_lawyer, data=data, creating=ident is None, scope=session.scope,
                        entry=entry)
            )  # fmt: skip
        except AlreadyExists:
            errors["id"], status = Problem("id_taken"), 409
        except InvalidInput as e:
            errors[field_of(e, data["plan"])] = Problem("invalid", e.reason)
        except NotFound as e:  # the lawyer left the area meanwhile
            await refused(request, entry, e)
            raise web.HTTPNotFound() from e
    if errors:
        said = "; ".join(f"{field}: {p.detail or p.code}" for field, p in errors.items())
        await refused(request, entry, said)
        return await _edit(request, session, ident, values=values, errors=errors, status=status)
    where = f"/centre/lawyers/{target}" if data["villages"] else "/centre/lawyers"
    raise web.HTTPSeeOther(where)


async def add_absence(request: web.Request) -> web.Response:
    session = await auth.for_console(request)
    ident = request.match_info["id"]
    form = await auth.checked_form(request, session)
    typed = {k: form.get(k, "") for k in ("day", "from", "to", "reason")}
    entry = auth.entry(request, session, "lawyer.absence.add", ident,
                       f"{typed['day'][:10]} {typed['from'][:5]}-{typed['to'][:5]}")  # fmt: skip
    if (refusal := await _manageable(request, session, ident, entry)) is not None:
        return refusal
    try:
        day, span = absence_input(typed)
        await request.app[DATABASE].run_write(
            partial(_add_absence, lawyer=ident, day=day, span=span, reason=typed["reason"],
                    by=auth.shown_name(session), scope=session.scope, entry=entry)
        )  # fmt: skip
    except NotFound as e:
        await refused(request, entry, e)
        raise web.HTTPNotFound() from e
    except InvalidInput as e:
        await refused(request, entry, e)
        problem = Problem(e.field) if e.field in ("day", "span") else Problem("invalid", str(e))
        return await _edit(request, session, ident, absence=typed, absence_problem=problem,
                           status=400)  # fmt: skip
    raise web.HTTPSeeOther(f"/centre/lawyers/{ident}/edit#absences")


def _add_absence(
    conn: Connection, lawyer: str, day: date, span: tuple[int, int] | None, reason: str,
    by: str, scope: Scope, entry: audit.Entry,
) -> None:  # fmt: skip
    lawyers.get(conn, lawyer, scope, whole=True)
    added = lawyers.add_absence(conn, lawyer, day, span, reason, by)
    audit.write(conn, replace(entry, detail=f"{entry.detail} #{added}"))


async def remove_absence(request: web.Request) -> web.Response:
    session = await auth.for_console(request)
    ident = request.match_info["id"]
    absence = validation.row_id(request.match_info["aid"])
    await auth.checked_form(request, session)
    entry = auth.entry(request, session, "lawyer.absence.remove", ident, f"#{absence}")
    if (refusal := await _manageable(request, session, ident, entry)) is not None:
        return refusal
    try:
        if absence is None:
            raise NotFound("absence", request.match_info["aid"][:20])
        await request.app[DATABASE].run_write(
            partial(_remove_absence, lawyer=ident, absence=absence, scope=session.scope,
                    entry=entry)
        )  # fmt: skip
    except NotFound as e:
        await refused(request, entry, e)
        raise web.HTTPNotFound() from e
    raise web.HTTPSeeOther(f"/centre/lawyers/{ident}/edit#absences")


def _remove_absence(
    conn: Connection, lawyer: str, absence: int, scope: Scope, entry: audit.Entry
) -> None:
    lawyers.get(conn, lawyer, scope, whole=True)
    lawyers.remove_absence(conn, lawyer, absence)
    audit.write(conn, entry)


def setup(app: web.Application) -> None:
    add = app.router.add_route
    add("GET", "/centre/lawyers", lawyers_page, name="centre_lawyers")
    # Before /centre/lawyers/{id}: "new" is the form, never a lawyer's id.
    add("GET", "/centre/lawyers/new", lawyer_form, name="centre_lawyer_new_form")
    add("POST", "/centre/lawyers/new", save_lawyer, name="centre_lawyer_new")
    add("GET", "/centre/lawyers/{id}", lawyer_calendar, name="centre_lawyer")
    add("POST", "/centre/lawyers/{id}/book", book, name="centre_lawyer_book")
    add("GET", "/centre/lawyers/{id}/edit", lawyer_form, name="centre_lawyer_edit_form")
    add("POST", "/centre/lawyers/{id}/edit", save_lawyer, name="centre_lawyer_edit")
    add("POST", "/centre/lawyers/{id}/absences", add_absence, name="centre_lawyer_absence")
    add("POST", "/centre/lawyers/{id}/absences/{aid}/remove", remove_absence,
        name="centre_lawyer_absence_remove")  # fmt: skip
