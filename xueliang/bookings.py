"""Consultations with the family lawyer: booked from the TV or by staff on behalf of a
household, cancelled with a preset reason, closed as done or no-show.

No two live bookings of one lawyer overlap, and the database says so: a booking holds
one `lawyer_busy` row per 5 minutes it covers, under that table's primary key. The
loser of a race gets `SlotTaken`, whatever process or backend it ran on.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, get_args

from sqlalchemy import Connection, Select, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from xueliang import households, lawyers, validation
from xueliang.errors import Conflict, InvalidInput, NotFound
from xueliang.geography import LOCAL_TIME, LocalSpan, Scope, villages_in
from xueliang.stats import csv_text
from xueliang.storage.tables import (
    booking_notes,
    bookings,
    lawyer_busy,
    villages,
)
from xueliang.storage.tables import households as households_table
from xueliang.storage.tables import lawyers as lawyers_table

Topic = Literal["family", "land", "labour", "debt", "inheritance", "other"]
Channel = Literal["tv", "phone", "visit"]
State = Literal["booked", "cancelled", "done", "no_show"]
Reason = Literal["cannot_come", "solved", "other_time", "lawyer_absent", "other"]
TOPICS: tuple[str, ...] = get_args(Topic)
CHANNELS: tuple[str, ...] = get_args(Channel)
REASONS: tuple[str, ...] = get_args(Reason)
HOUSEHOLD_REASONS = ("cannot_come", "solved", "other_time", "other")
OUTCOMES = ("done", "no_show")
# A household cannot hold every slot of the week: at most this many upcoming bookings.
MAX_UPCOMING = 3
MAX_NOTE = 2000


class SlotTaken(Conflict):
    """Someone else booked this slot first (or it overlaps one that is booked)."""


class TooLate(Conflict):
    """The slot is too close or past: it can no longer be booked or cancelled."""


class TooMany(Conflict):
    """The household already holds `MAX_UPCOMING` upcoming bookings."""


@dataclass(frozen=True, slots=True)
class Note:
    at: datetime
    by: str
    text: str


@dataclass(frozen=True, slots=True)
class Booking(LocalSpan):
    id: int
    lawyer: str
    lawyer_name: str
    lawyer_phone: str
    household: str
    household_name: str
    household_phone: str
    village: str
    village_name: str
    starts_at: datetime
    ends_at: datetime
    topic: str
    channel: str
    state: str
    created_at: datetime
    created_by: str
    cancel_reason: str | None
    cancelled_by: str | None
    closed_by: str | None
    cancel_by: datetime  # a household may cancel until then (the lawyer's cut-off)

    def household_may_cancel(self, now: datetime) -> bool:
        return self.state == "booked" and now <= self.cancel_by


def _select() -> Select[Any]:
    return (
        select(
            bookings,
            lawyers_table.c.name.label("lawyer_name"),
            lawyers_table.c.phone.label("lawyer_phone"),
            lawyers_table.c.cancel_cutoff_minutes,
            households_table.c.name.label("household_name"),
            households_table.c.phone.label("household_phone"),
            villages.c.name.label("village_name"),
        )
        .join(lawyers_table, lawyers_table.c.id == bookings.c.lawyer_id)
        .join(households_table, households_table.c.id == bookings.c.household_id)
        .join(villages, villages.c.id == bookings.c.village_id)
    )


def _booking(row: Any) -> Booking:
    return Booking(
        id=row.id, lawyer=row.lawyer_id, lawyer_name=row.lawyer_name,
        lawyer_phone=row.lawyer_phone, household=row.household_id,
        household_name=row.household_name, household_phone=row.household_phone,
        village=row.village_id, village_name=row.village_name, starts_at=row.starts_at,
        ends_at=row.ends_at, topic=row.topic, channel=row.channel, state=row.state,
        created_at=row.created_at, created_by=row.created_by, cancel_reason=row.cancel_reason,
        cancelled_by=row.cancelled_by, closed_by=row.closed_by,
        cancel_by=row.starts_at - timedelta(minutes=row.cancel_cutoff_minutes),
    )  # fmt: skip


def book(
    conn: Connection, *, lawyer: str, household: str, starts_at: datetime, topic: str,
    channel: str, by: str, now: datetime, scope: Scope | None = None,
) -> Booking:  # fmt: skip
    """Book the lawyer's slot that starts at `starts_at` for `household`.

    From the TV (`channel="tv"`) the slot must lie after the lawyer's lead time; staff
    (`scope` given: the household must live inside it) may book any slot still to come,
    as a household calls or visits. The slot must be one of the plan's, free, in the
    booking window, at a place the household can reach."""
    if topic not in TOPICS:
        raise InvalidInput("topic", f"must be one of {', '.join(TOPICS)}")
    if channel not in CHANNELS:
        raise InvalidInput("channel", f"must be one of {', '.join(CHANNELS)}")
    home = households.find(conn, household)
    if home is None or (
        scope is not None and home.village not in lawyers.in_scope_ids(conn, scope)
    ):
        raise NotFound("household", household)
    found = lawyers.find(conn, lawyer)
    if found is None or not found.active or home.village not in found.villages:
        raise NotFound("lawyer", lawyer)
    slot = lawyers.slot_at(conn, found, starts_at)
    if slot is None or slot.village not in (None, home.village):
        raise InvalidInput("slot", "is not one of the lawyer's slots")
    earliest = now + timedelta(minutes=found.lead_minutes if channel == "tv" else 0)
    if slot.starts_at < earliest:
        raise TooLate("this slot is too soon to be booked")
    if slot.starts_at > now + timedelta(days=found.window_days):
        raise InvalidInput("slot", "is beyond the booking window")
    # One household's bookings queue here (PostgreSQL), so the count below cannot be
    # passed by several at once; SQLite writers are one at a time anyway.
    conn.execute(
        select(households_table.c.id).where(households_table.c.id == household).with_for_update()
    )
    held = conn.scalar(
        select(func.count())
        .select_from(bookings)
        .where(
            bookings.c.household_id == household,
            bookings.c.state == "booked",
            bookings.c.ends_at > now,
        )
    )
    if (held or 0) >= MAX_UPCOMING:
        raise TooMany(f"a household may hold {MAX_UPCOMING} upcoming bookings")
    inserted = conn.execute(
        bookings.insert().values(
            lawyer_id=lawyer,
            household_id=household,
            village_id=home.village,
            starts_at=slot.starts_at,
            ends_at=slot.ends_at,
            topic=topic,
            channel=channel,
            state="booked",
            created_at=now,
            created_by=by,
        )
    )
    assert inserted.inserted_primary_key is not None
    booking_id = int(inserted.inserted_primary_key[0])
    try:
        conn.execute(
            lawyer_busy.insert(),
            [
                {"lawyer_id": lawyer, "at": unit, "booking_id": booking_id}
                for unit in lawyers.units(slot.starts_at, slot.ends_at)
            ],
        )
    except IntegrityError:
        raise SlotTaken("this slot has just been taken") from None
    return get(conn, booking_id)


def holder(conn: Connection, lawyer: str, starts_at: datetime) -> str | None:
    """The household whose live booking covers `starts_at`, if any."""
    return conn.scalar(
        select(bookings.c.household_id)
        .join(lawyer_busy, lawyer_busy.c.booking_id == bookings.c.id)
        .where(lawyer_busy.c.lawyer_id == lawyer, lawyer_busy.c.at == starts_at)
    )


def get(
    conn: Connection, id: int, *, household: str | None = None, scope: Scope | None = None
) -> Booking:
    """One booking; with `household` only that household's, with `scope` only one of a
    village inside it (others are not found, never forbidden: ids tell nothing)."""
    query = _select().where(bookings.c.id == id)
    if household is not None:
        query = query.where(bookings.c.household_id == household)
    if scope is not None:
        query = query.where(villages_in(scope))
    row = conn.execute(query).one_or_none()
    if row is None:
        raise NotFound("booking", str(id))
    return _booking(row)


def cancel(
    conn: Connection, id: int, *, reason: str, by: str, now: datetime,
    household: str | None = None, scope: Scope | None = None,
) -> Booking:  # fmt: skip
    """Cancel a live booking: a household its own, up to the lawyer's cut-off before the
    slot and with one of `HOUSEHOLD_REASONS`; staff any in scope until it ends. The slot
    becomes free at once."""
    allowed = HOUSEHOLD_REASONS if household is not None else REASONS
    if reason not in allowed:
        raise InvalidInput("reason", f"must be one of {', '.join(allowed)}")
    booking = get(conn, id, household=household, scope=scope)
    if booking.state != "booked":
        raise Conflict(f"booking {id} is {booking.state}")
    if household is not None:
        if not booking.household_may_cancel(now):
            raise TooLate("too close to the appointment to cancel here")
    elif now >= booking.ends_at:
        raise TooLate("the appointment is over")
    changed = conn.execute(
        update(bookings)
        .where(bookings.c.id == id, bookings.c.state == "booked")
        .values(state="cancelled", cancelled_at=now, cancelled_by=by, cancel_reason=reason)
    )
    if changed.rowcount != 1:  # a concurrent change won
        raise Conflict(f"booking {id} changed meanwhile")
    conn.execute(delete(lawyer_busy).where(lawyer_busy.c.booking_id == id))
    return get(conn, id)


def close(
    conn: Connection, id: int, outcome: str, *, by: str, now: datetime, scope: Scope
) -> Booking:
    """Record how a consultation went: `done` or `no_show`, once it has begun."""
    if outcome not in OUTCOMES:
        raise InvalidInput("outcome", "must be done or no_show")
    booking = get(conn, id, scope=scope)
    if booking.state != "booked":
        raise Conflict(f"booking {id} is {booking.state}")
    if now < booking.starts_at:
        raise TooLate("the appointment has not begun yet")
    changed = conn.execute(
        update(bookings)
        .where(bookings.c.id == id, bookings.c.state == "booked")
        .values(state=outcome, closed_at=now, closed_by=by)
    )
    if changed.rowcount != 1:  # cancelled or closed meanwhile
        raise Conflict(f"booking {id} changed meanwhile")
    return get(conn, id)


def add_note(conn: Connection, id: int, text: str, *, by: str, now: datetime, scope: Scope) -> None:
    get(conn, id, scope=scope)
    text = text.strip()
    if not text:
        raise InvalidInput("note", "must not be empty")
    if len(text) > MAX_NOTE:
        raise InvalidInput("note", f"must be at most {MAX_NOTE} characters")
    if "\x00" in text:
        raise InvalidInput("note", "must not contain NUL characters")
    conn.execute(booking_notes.insert().values(booking_id=id, at=now, by=by, text=text))


def notes(conn: Connection, id: int) -> list[Note]:
    rows = conn.execute(
        select(booking_notes).where(booking_notes.c.booking_id == id).order_by(booking_notes.c.id)
    )
    return [Note(r.at, r.by, r.text) for r in rows]


def of_household(conn: Connection, household: str, now: datetime, limit: int = 20) -> list[Booking]:
    """The household's live bookings still to come, soonest first, then its recent
    other ones (cancelled, done) newest first."""
    upcoming = conn.execute(
        _select()
        .where(
            bookings.c.household_id == household,
            bookings.c.state == "booked",
            bookings.c.ends_at > now,
        )
        .order_by(bookings.c.starts_at)
    ).all()
    rest = conn.execute(
        _select()
        .where(
            bookings.c.household_id == household,
            ~bookings.c.id.in_([r.id for r in upcoming]),
        )
        .order_by(bookings.c.starts_at.desc())
        .limit(max(0, limit - len(upcoming)))
    ).all()
    return [_booking(r) for r in (*upcoming, *rest)]


def today(conn: Connection, household: str, now: datetime) -> Booking | None:
    """The household's next live booking of today (local time), for the home banner."""
    local = now.astimezone(LOCAL_TIME)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    row = conn.execute(
        _select()
        .where(
            bookings.c.household_id == household,
            bookings.c.state == "booked",
            bookings.c.ends_at > now,
            bookings.c.starts_at < midnight,
        )
        .order_by(bookings.c.starts_at)
        .limit(1)
    ).one_or_none()
    return None if row is None else _booking(row)


def calendar(
    conn: Connection, scope: Scope, since: datetime, until: datetime, *,
    lawyer: str | None = None, village: str | None = None, live_only: bool = False,
) -> list[Booking]:  # fmt: skip
    """Bookings in `scope` starting in [since, until), by lawyer or village if given."""
    query = _select().where(
        villages_in(scope), bookings.c.starts_at >= since, bookings.c.starts_at < until
    )
    if lawyer is not None:
        query = query.where(bookings.c.lawyer_id == lawyer)
    if village is not None:
        query = query.where(bookings.c.village_id == village)
    if live_only:
        query = query.where(bookings.c.state != "cancelled")
    return [_booking(r) for r in conn.execute(query.order_by(bookings.c.starts_at, bookings.c.id))]


CSV_HEADER = [
    "booking", "starts_at", "ends_at", "lawyer", "lawyer_name", "village", "village_name",
    "household", "household_name", "topic", "channel", "state", "created_by",
    "cancel_reason", "cancelled_by", "closed_by",
]  # fmt: skip


def calendar_csv(
    conn: Connection, scope: Scope, since: datetime, until: datetime, lawyer: str | None = None
) -> str:
    """The calendar as CSV for the village's records (names guarded against formulas)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    for b in calendar(conn, scope, since, until, lawyer=lawyer):
        writer.writerow(
            [
                b.id, b.local_start.isoformat(), b.local_end.isoformat(), csv_text(b.lawyer),
                csv_text(b.lawyer_name), csv_text(b.village), csv_text(b.village_name),
                csv_text(b.household), csv_text(b.household_name), b.topic, b.channel,
                b.state, csv_text(b.created_by), b.cancel_reason or "",
                csv_text(b.cancelled_by), csv_text(b.closed_by),
            ]
        )  # fmt: skip
    return out.getvalue()


def household_choices(conn: Connection, scope: Scope, query: str) -> list[tuple[str, str, str]]:
    """(id, name, village name) of households in `scope` whose id or name contains
    `query` (staff picking a household to book for), at most 20."""
    query = validation.text("household", query, max_length=64)
    pattern = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = conn.execute(
        select(households_table.c.id, households_table.c.name, villages.c.name.label("village"))
        .join(villages, villages.c.id == households_table.c.village_id)
        .where(
            villages_in(scope),
            (households_table.c.id.like(pattern, escape="\\"))
            | (households_table.c.name.like(pattern, escape="\\")),
        )
        .order_by(households_table.c.id)
        .limit(20)
    )
    return [(r.id, r.name, r.village) for r in rows]
