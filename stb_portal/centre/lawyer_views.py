"""The family lawyer in the staff console: the lawyers serving the area, a lawyer's week
with booking on behalf of a household, a village's bookings and their CSV, one booking
with its actions, and (town and county staff) each lawyer's details, weekly plan and
absences. Every change is written with its audit entry in one transaction; refused
attempts are audited too."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from typing import Any, TypeVar

from aiohttp import web
from sqlalchemy import Connection

from stb_portal import auth
from stb_portal.centre.render import page
from stb_portal.centre.stats_views import period
from xueliang import audit, bookings, geography, households, lawyers, validation
from xueliang.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from xueliang.geography import LOCAL_TIME, Scope
from xueliang.staff_sessions import StaffSession
from xueliang.storage.types import utcnow
from xueliang.web import DATABASE

T = TypeVar("T")
# Staff book for a household that calls or comes in; "tv" is the household's own.
STAFF_CHANNELS = ("phone", "visit")
NUMBERS = ("slot_minutes", "lead_minutes", "window_days", "cancel_cutoff_minutes")
TEXTS = ("id", "name", "firm", "phone", "practice")
FORM_FIELDS = frozenset({*TEXTS, *NUMBERS, "villages", "active"})
MAX_PLAN_TEXT = 200
ABSENCES_AHEAD = timedelta(days=366)
_PERIOD = re.compile(r"(\d{1,2}):(\d{2})\s*[-–—~～至到]\s*(\d{1,2}):(\d{2})")
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})")


@dataclass(frozen=True, slots=True)
class Problem:
    """What went wrong, as a code the templates say in the staff's language; `detail`
    carries the domain's own words where there is nothing better to say."""

    code: str
    detail: str = ""


# --- weeks and the lawyer's calendar ----------------------------------------------


def monday_of(text: str | None) -> date:
    """The Monday of the week `text` (YYYY-MM-DD, local) falls in; this week without it."""
    if not text:
        today = datetime.now(LOCAL_TIME).date()
        return today - timedelta(days=today.weekday())
    return (day := _day(text, "week")) - timedelta(days=day.weekday())


def _day(text: str, field: str) -> date:
    text = text.strip()
    try:
        day = datetime.strptime(text, "%Y-%m-%d").date() if len(text) <= 10 else None
    except ValueError:
        day = None
    if day is None:
        raise InvalidInput(field, "must be a date like 2026-11-30")
    if not 2000 <= day.year <= 2100:
        raise InvalidInput(field, "must be a date between 2000 and 2100")
    return day


def local_span(first: date, days: int) -> tuple[datetime, datetime]:
    """From local midnight of `first` to local midnight `days` later, in UTC."""
    start = datetime.combine(first, time(), LOCAL_TIME)
    end = datetime.combine(first + timedelta(days=days), time(), LOCAL_TIME)
    return start.astimezone(UTC), end.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Cell:
    """A line of a day in a lawyer's week: a booking of the area, or a slot of the plan
    without one: `free`, `taken` (by a household outside the area), `absent`, `past`,
    or `later` (beyond the booking window)."""

    starts_at: datetime
    ends_at: datetime
    state: str
    village: str | None
    booking: bookings.Booking | None = None
    away: bool = False  # a booking while the lawyer is absent: the household must know

    @property
    def local_start(self) -> datetime:
        return self.starts_at.astimezone(LOCAL_TIME)

    @property
    def local_end(self) -> datetime:
        return self.ends_at.astimezone(LOCAL_TIME)


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
        await _refused(request, entry, str(e))
        raise web.HTTPNotFound() from e
    try:
        if kept["channel"] not in STAFF_CHANNELS:
            raise InvalidInput("channel", "must be phone or visit")
        made = await db.run_write(
            partial(_book, entry=entry, lawyer=ident, household=household,
                    starts_at=_moment(form.get("starts_at", "")), topic=kept["topic"],
                    channel=kept["channel"], by=auth.shown_name(session), scope=session.scope)
        )  # fmt: skip
    except NotFound as e:
        await _refused(request, entry, str(e))
        if e.kind == "household":  # another area's household is not found, as ids are
            problem, status = Problem("household", household[:64]), 404
        else:
            problem, status = Problem("not_served"), 400
    except (Conflict, InvalidInput) as e:
        await _refused(request, entry, str(e))
        problem, status = _problem(e, "too_soon"), _status(e)
    else:
        raise web.HTTPSeeOther(f"/centre/bookings/{made.id}")
    return await _calendar(request, session, monday, problem=problem, status=status, form=kept)


def _book(conn: Connection, entry: audit.Entry, **booking: Any) -> bookings.Booking:
    made = bookings.book(conn, now=utcnow(), **booking)
    audit.write(conn, replace(entry, target=str(made.id)))
    return made


def _moment(text: str) -> datetime:
    """A slot's start as the form sends it (ISO 8601 with its offset), in UTC."""
    try:
        moment = datetime.fromisoformat(text.strip()[:40])
    except ValueError:
        raise InvalidInput("slot", "must be a date and time") from None
    if moment.tzinfo is None or not 2000 <= moment.year <= 2100:
        raise InvalidInput("slot", "must be a date and time with its offset")
    return moment.astimezone(UTC)


# --- a village's bookings and the CSV ---------------------------------------------


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
    return web.Response(
        # With a byte-order mark, spreadsheet programs read the Chinese names right.
        body=body.encode("utf-8-sig"),
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


def _csv(
    conn: Connection, scope: Scope, since: datetime, until: datetime, lawyer: str | None
) -> str:
    if lawyer is not None:
        lawyers.get(conn, lawyer, scope)  # another area's lawyer is not found
    return bookings.calendar_csv(conn, scope, since, until, lawyer)


# --- one booking ------------------------------------------------------------------


def _booking_id(request: web.Request) -> int:
    found = validation.number(request.match_info["id"], 15)
    if found is None:
        raise web.HTTPNotFound()
    return found


def _booking_detail(
    conn: Connection, id: int, scope: Scope
) -> tuple[bookings.Booking, households.Household | None, list[bookings.Note]]:
    found = bookings.get(conn, id, scope=scope)
    return found, households.find(conn, found.household), bookings.notes(conn, id)


async def booking_page(request: web.Request) -> web.Response:
    session = await auth.for_console(request)
    return await _booking(request, session, _booking_id(request))


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
    ident = _booking_id(request)
    return session, ident, await auth.checked_form(request, session)


async def _change(
    request: web.Request, session: StaffSession, ident: int, entry: audit.Entry,
    work: Callable[[Connection], object], form: dict[str, str], too_late: str,
) -> web.Response:  # fmt: skip
    try:
        await request.app[DATABASE].run_write(partial(_audited, work=work, entry=entry))
    except NotFound as e:
        await _refused(request, entry, str(e))
        raise web.HTTPNotFound() from e
    except (Conflict, InvalidInput) as e:
        await _refused(request, entry, str(e))
        return await _booking(
            request, session, ident, problem=_problem(e, too_late), status=_status(e),
            form=form,
        )  # fmt: skip
    raise web.HTTPSeeOther(f"/centre/bookings/{ident}")


def _audited(conn: Connection, work: Callable[[Connection], T], entry: audit.Entry) -> T:
    """`work`, then its audit entry, in the same transaction."""
    done = work(conn)
    audit.write(conn, entry)
    return done


def _problem(e: Exception, too_late: str) -> Problem:
    if isinstance(e, bookings.SlotTaken):
        return Problem("taken")
    if isinstance(e, bookings.TooLate):
        return Problem(too_late)
    if isinstance(e, bookings.TooMany):
        return Problem("too_many", str(bookings.MAX_UPCOMING))
    return Problem("invalid" if isinstance(e, InvalidInput) else "conflict", str(e))


def _status(e: Exception) -> int:
    return 400 if isinstance(e, InvalidInput) else 409


async def _refused(request: web.Request, entry: audit.Entry, reason: str) -> None:
    """Audit a refused attempt (as `staff_actions` does), in a transaction of its own."""
    refused = replace(entry, action=f"{entry.action}.refused"[:32], detail=reason)
    await audit.record(request.app[DATABASE], refused)


# --- the lawyers and their management (town and county staff) ---------------------


def can_edit(session: StaffSession) -> bool:
    """Town and county staff manage lawyers; a village's staff see and book."""
    return session.staff.role in ("town", "county")


def duty_summary(lawyer: lawyers.Lawyer) -> list[tuple[int, int, str]]:
    """(first weekday, last weekday, periods) with neighbouring days of the same hours
    joined: Monday to Friday 09:00-12:00, 14:00-17:00."""
    runs: list[tuple[int, int, str]] = []
    for day in lawyer.duty_days:
        text = plan_text(lawyer.plan, day)
        if runs and runs[-1][1] == day - 1 and runs[-1][2] == text:
            runs[-1] = (runs[-1][0], day, text)
        else:
            runs.append((day, day, text))
    return runs


def plan_text(plan: tuple[lawyers.Period, ...], weekday: int) -> str:
    periods = sorted((p for p in plan if p.weekday == weekday), key=lambda p: p.start)
    return ", ".join(f"{p.start}-{p.end}" for p in periods)


def parse_day(weekday: int, text: str, village: str | None) -> list[dict[str, Any]]:
    """One weekday's periods as typed (`09:00-12:00, 14:00-17:00`); ValueError when the
    text is not of that form (the hours themselves are checked by `lawyers.checked`)."""
    if len(text) > MAX_PLAN_TEXT:
        raise ValueError(text)
    periods = []
    for part in re.split(r"[,，;；、]", text):
        if not part.strip():
            continue
        found = _PERIOD.fullmatch(part.strip())
        if found is None:
            raise ValueError(part)
        h1, m1, h2, m2 = found.groups()
        periods.append({"weekday": weekday, "start": f"{int(h1):02d}:{m1}",
                        "end": f"{int(h2):02d}:{m2}", "village": village})  # fmt: skip
    return periods


def values_of(lawyer: lawyers.Lawyer | None) -> dict[str, Any]:
    """The edit form's values for a lawyer (the defaults for a new one)."""
    if lawyer is None:
        defaults = {n: str(lawyers.LawyerInput.model_fields[n].default) for n in NUMBERS}
        return {**dict.fromkeys(TEXTS, ""), **defaults, "villages": [], "active": True,
                "plan": [("", "")] * 7}  # fmt: skip
    return {
        **{n: str(getattr(lawyer, n)) for n in (*TEXTS, *NUMBERS)},
        "villages": list(lawyer.villages), "active": lawyer.active,
        "plan": [(plan_text(lawyer.plan, d), next((p.village or "" for p in lawyer.plan
                                                   if p.weekday == d), "")) for d in range(7)],
    }  # fmt: skip


def values_from(form: dict[str, str]) -> dict[str, Any]:
    """The edit form's values as posted, kept whole to show them again."""
    return {
        **{n: form.get(n, "") for n in (*TEXTS, *NUMBERS)},
        "villages": sorted(k.removeprefix("village_") for k in form if k.startswith("village_")),
        "active": "active" in form,
        "plan": [(form.get(f"plan_{d}", ""), form.get(f"plan_{d}_village", "")) for d in range(7)],
    }


def lawyer_data(
    values: dict[str, Any], ours: set[str]
) -> tuple[dict[str, Any], dict[str, Problem]]:
    """The values as `lawyers.checked` wants them, and what is wrong with the form
    itself (numbers, plan text, villages outside the editor's area `ours`)."""
    errors: dict[str, Problem] = {}
    data: dict[str, Any] = {n: values[n] for n in TEXTS}
    data["id"] = data["id"].strip()
    data.update(villages=values["villages"], active=values["active"])
    if data["id"] == "new":  # the path of the form for a new lawyer
        errors["id"] = Problem("id_taken")
    for field in NUMBERS:
        number = validation.number(values[field].strip(), 5)
        if number is None:
            errors[field] = Problem("number")
        data[field] = number
    if any(v not in ours for v in values["villages"]):
        errors["villages"] = Problem("outside")
    data["plan"] = []
    for day, (text, village) in enumerate(values["plan"]):
        try:
            data["plan"] += parse_day(day, text, village or None)
        except ValueError:
            errors[f"plan_{day}"] = Problem("plan")
    return data, errors


def _field_of(e: InvalidInput, plan: list[dict[str, Any]]) -> str:
    """Where on the form an error of `lawyers.checked` belongs."""
    head, _, rest = e.field.partition(".")
    index = rest.partition(".")[0]
    if head == "plan" and index.isdigit() and int(index) < len(plan):
        return f"plan_{plan[int(index)]['weekday']}"
    if weekday := re.search(r"weekday (\d)", e.reason):
        return f"plan_{weekday.group(1)}"
    return head if head in FORM_FIELDS else "lawyer"


def _put_lawyer(
    conn: Connection, data: dict[str, Any], creating: bool, scope: Scope, entry: audit.Entry
) -> None:
    """Store the lawyer with its audit entry; villages outside `scope` stay as they are
    (the editor cannot see them, so cannot have meant to take them away)."""
    if creating:
        if lawyers.find(conn, data["id"]) is not None:
            raise AlreadyExists("lawyer", data["id"])
        kept: list[str] = []
    else:
        ours = lawyers.in_scope_ids(conn, scope)
        kept = [v for v in lawyers.get(conn, data["id"], scope).villages if v not in ours]
    checked = lawyers.checked({**data, "villages": [*data["villages"], *kept]})
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
            await request.app[DATABASE].run_read(
                partial(lawyers.get, id=ident, scope=session.scope)
            )
        except NotFound as e:
            if entry is not None:
                await _refused(request, entry, str(e))
            raise web.HTTPNotFound() from e
    if can_edit(session):
        return None
    if entry is not None:
        await _refused(request, entry, "village staff may not change lawyers")
    return await _lawyer_list(request, session, Problem("forbidden"), 403)


def _edit_context(
    conn: Connection, id: str | None, scope: Scope, today: date
) -> tuple[lawyers.Lawyer | None, dict[str, str], list[lawyers.Absence]]:
    names = geography.village_names(conn, scope)
    if id is None:
        return None, names, []
    away = lawyers.absences(conn, id, today, today + ABSENCES_AHEAD)
    return lawyers.get(conn, id, scope), names, away


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
        outside=[v for v in lawyer.villages if v not in names] if lawyer else [],
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
            errors[_field_of(e, data["plan"])] = Problem("invalid", e.reason)
        except NotFound as e:  # the lawyer left the area meanwhile
            await _refused(request, entry, str(e))
            raise web.HTTPNotFound() from e
    if errors:
        said = "; ".join(f"{field}: {p.detail or p.code}" for field, p in errors.items())
        await _refused(request, entry, said)
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
        await _refused(request, entry, str(e))
        raise web.HTTPNotFound() from e
    except InvalidInput as e:
        await _refused(request, entry, str(e))
        problem = Problem(e.field) if e.field in ("day", "span") else Problem("invalid", str(e))
        return await _edit(request, session, ident, absence=typed, absence_problem=problem,
                           status=400)  # fmt: skip
    raise web.HTTPSeeOther(f"/centre/lawyers/{ident}/edit#absences")


def absence_input(typed: dict[str, str]) -> tuple[date, tuple[int, int] | None]:
    """The day, and the local span (minutes after midnight) or None for the whole day."""
    day = _day(typed["day"], "day")
    start, end = typed["from"].strip(), typed["to"].strip()
    if not start and not end:
        return day, None
    if not (_CLOCK.fullmatch(start) and _CLOCK.fullmatch(end)):
        raise InvalidInput("span", "give both times, like 09:00 and 12:00, or neither")
    return day, (lawyers.minutes(start), lawyers.minutes(end))


def _add_absence(
    conn: Connection, lawyer: str, day: date, span: tuple[int, int] | None, reason: str,
    by: str, scope: Scope, entry: audit.Entry,
) -> None:  # fmt: skip
    lawyers.get(conn, lawyer, scope)
    added = lawyers.add_absence(conn, lawyer, day, span, reason, by)
    audit.write(conn, replace(entry, detail=f"{entry.detail} #{added}"))


async def remove_absence(request: web.Request) -> web.Response:
    session = await auth.for_console(request)
    ident = request.match_info["id"]
    absence = validation.number(request.match_info["aid"], 15)
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
        await _refused(request, entry, str(e))
        raise web.HTTPNotFound() from e
    raise web.HTTPSeeOther(f"/centre/lawyers/{ident}/edit#absences")


def _remove_absence(
    conn: Connection, lawyer: str, absence: int, scope: Scope, entry: audit.Entry
) -> None:
    lawyers.get(conn, lawyer, scope)
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
    add("GET", "/centre/bookings", village_bookings, name="centre_bookings")
    add("GET", "/centre/bookings.csv", bookings_csv, name="centre_bookings_csv")
    add("GET", "/centre/bookings/{id}", booking_page, name="centre_booking")
    add("POST", "/centre/bookings/{id}/close", close_booking, name="centre_booking_close")
    add("POST", "/centre/bookings/{id}/cancel", cancel_booking, name="centre_booking_cancel")
    add("POST", "/centre/bookings/{id}/note", note_booking, name="centre_booking_note")
