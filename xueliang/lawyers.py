"""The family lawyer (一村一法律顾问): who serves which villages, when they work, and the
free slots a household may book.

A lawyer's week is a list of working periods in local time; the gaps between two
periods of a day are the breaks. Absences (holidays, a morning in court) remove slots
from the plan. Bookings themselves live in `xueliang.bookings`.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import Connection, delete, select

from xueliang import validation
from xueliang.errors import InvalidInput, NotFound
from xueliang.geography import LOCAL_TIME, LocalSpan, Scope, villages_in
from xueliang.storage.tables import lawyer_absences, lawyer_busy, lawyer_villages, lawyers, villages

# Bookings are made of 5-minute units (see `lawyer_busy`): slots start and end on them.
UNIT = timedelta(minutes=5)
WEEKDAYS = 7
MAX_WINDOW_DAYS = 90
_CLOCK = re.compile(r"([01][0-9]|2[0-3]):[0-5][05]|24:00")
_Line = Annotated[str, Field(max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")]


def minutes(clock: str) -> int:
    hours, mins = clock.split(":")
    return int(hours) * 60 + int(mins)


def clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


class Period(BaseModel):
    """One working period of a weekday (0 = Monday), local time, on 5-minute marks;
    `village` is where the lawyer sits then (None: any village they serve, by phone or
    at the township office)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    weekday: Annotated[int, Field(ge=0, le=6)]
    start: str
    end: str
    village: str | None = None

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, value: str) -> str:
        if not _CLOCK.fullmatch(value):
            raise ValueError("must be a time like 09:00 or 14:30, on a 5-minute mark")
        return value

    @model_validator(mode="after")
    def _order(self) -> Period:
        if minutes(self.end) <= minutes(self.start):
            raise ValueError("a period must end after it starts")
        return self


class LawyerInput(BaseModel):
    """A lawyer as staff enter them; validated before anything is stored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
    name: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")]
    firm: Annotated[str, Field(max_length=100, pattern=r"^[^\x00-\x1f\x7f]*$")] = ""
    phone: Annotated[str, Field(max_length=32)] = ""
    practice: _Line = ""
    villages: Annotated[list[str], Field(min_length=1, max_length=50)]
    plan: Annotated[list[Period], Field(max_length=70)]
    slot_minutes: Annotated[int, Field(ge=10, le=240, multiple_of=5)] = 30
    lead_minutes: Annotated[int, Field(ge=0, le=10080)] = 120
    window_days: Annotated[int, Field(ge=1, le=MAX_WINDOW_DAYS)] = 14
    cancel_cutoff_minutes: Annotated[int, Field(ge=0, le=10080)] = 120
    active: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> LawyerInput:
        validation.phone("phone", self.phone)
        if len(set(self.villages)) != len(self.villages):
            raise ValueError("a village is listed twice")
        for period in self.plan:
            if period.village is not None and period.village not in self.villages:
                raise ValueError(f"period on weekday {period.weekday}: not one of the villages")
        for day in range(WEEKDAYS):
            spans = sorted(
                (minutes(p.start), minutes(p.end)) for p in self.plan if p.weekday == day
            )
            if any(a[1] > b[0] for a, b in itertools.pairwise(spans)):
                raise ValueError(f"periods of weekday {day} overlap")
        return self


def checked(data: dict[str, Any]) -> LawyerInput:
    """`data` as a LawyerInput, or InvalidInput naming the first bad field."""
    return validation.model(LawyerInput, data, "lawyer")


@dataclass(frozen=True, slots=True)
class Lawyer:
    id: str
    name: str
    firm: str
    phone: str
    practice: str
    villages: tuple[str, ...]
    plan: tuple[Period, ...]
    slot_minutes: int
    lead_minutes: int
    window_days: int
    cancel_cutoff_minutes: int
    active: bool

    @property
    def duty_days(self) -> tuple[int, ...]:
        return tuple(sorted({p.weekday for p in self.plan}))


@dataclass(frozen=True, slots=True)
class Absence:
    id: int
    lawyer: str
    day: date
    start_minute: int | None  # None: the whole day
    end_minute: int | None
    reason: str

    def covers(self, start: datetime, end: datetime) -> bool:
        """True when the local span [start, end) falls into this absence."""
        local_start, local_end = start.astimezone(LOCAL_TIME), end.astimezone(LOCAL_TIME)
        if self.start_minute is None or self.end_minute is None:
            return local_start.date() <= self.day <= (local_end - UNIT).date()
        midnight = datetime.combine(self.day, time(), LOCAL_TIME)
        gone_from = midnight + timedelta(minutes=self.start_minute)
        gone_until = midnight + timedelta(minutes=self.end_minute)
        return local_start < gone_until and gone_from < local_end


@dataclass(frozen=True, slots=True)
class Slot(LocalSpan):
    starts_at: datetime  # UTC
    ends_at: datetime
    village: str | None

    @property
    def day(self) -> date:
        return self.local_start.date()


def put(conn: Connection, data: LawyerInput, now: datetime) -> None:
    """Create the lawyer, or replace everything about them (bookings stay)."""
    known = set(conn.scalars(select(villages.c.id).where(villages.c.id.in_(data.villages))))
    for village in data.villages:
        if village not in known:
            raise NotFound("village", village)
    values = {
        "name": validation.text("name", data.name, max_length=100),
        "firm": data.firm.strip(),
        "phone": data.phone.strip(),
        "practice": data.practice.strip(),
        "plan": [p.model_dump() for p in sorted(data.plan, key=lambda p: (p.weekday, p.start))],
        "slot_minutes": data.slot_minutes,
        "lead_minutes": data.lead_minutes,
        "window_days": data.window_days,
        "cancel_cutoff_minutes": data.cancel_cutoff_minutes,
        "active": data.active,
        "updated_at": now,
    }
    exists = conn.scalar(select(lawyers.c.id).where(lawyers.c.id == data.id))
    if exists is None:
        conn.execute(lawyers.insert().values(id=data.id, created_at=now, **values))
    else:
        conn.execute(lawyers.update().where(lawyers.c.id == data.id).values(**values))
    conn.execute(delete(lawyer_villages).where(lawyer_villages.c.lawyer_id == data.id))
    conn.execute(
        lawyer_villages.insert(), [{"lawyer_id": data.id, "village_id": v} for v in data.villages]
    )


def _lawyers(conn: Connection, ids: Iterable[str] | None = None) -> list[Lawyer]:
    query = select(lawyers).order_by(lawyers.c.name, lawyers.c.id)
    if ids is not None:
        query = query.where(lawyers.c.id.in_(list(ids)))
    rows = conn.execute(query).all()
    served: dict[str, list[str]] = {}
    links = select(lawyer_villages).where(lawyer_villages.c.lawyer_id.in_([r.id for r in rows]))
    for link in conn.execute(links.order_by(lawyer_villages.c.village_id)):
        served.setdefault(link.lawyer_id, []).append(link.village_id)
    return [
        Lawyer(
            id=r.id,
            name=r.name,
            firm=r.firm,
            phone=r.phone,
            practice=r.practice,
            villages=tuple(served.get(r.id, ())),
            plan=tuple(Period.model_validate(p) for p in r.plan),
            slot_minutes=r.slot_minutes,
            lead_minutes=r.lead_minutes,
            window_days=r.window_days,
            cancel_cutoff_minutes=r.cancel_cutoff_minutes,
            active=r.active,
        )
        for r in rows
    ]


def find(conn: Connection, id: str) -> Lawyer | None:
    found = _lawyers(conn, [id])
    return found[0] if found else None


def get(conn: Connection, id: str, scope: Scope | None = None, *, whole: bool = False) -> Lawyer:
    """The lawyer; with `scope`, only one serving a village inside it, and with `whole`
    only one whose villages all lie inside it (what may change the lawyer for everyone:
    a town cannot change the plan of a lawyer it shares with another town)."""
    lawyer = find(conn, id)
    if lawyer is None or (scope is not None and not _covered(conn, lawyer, scope, whole)):
        raise NotFound("lawyer", id)
    return lawyer


def manages(conn: Connection, lawyer: Lawyer, scope: Scope) -> bool:
    """True when every village `lawyer` serves lies inside `scope`."""
    return _covered(conn, lawyer, scope, whole=True)


def _covered(conn: Connection, lawyer: Lawyer, scope: Scope, whole: bool) -> bool:
    ours = in_scope_ids(conn, scope)
    served = set(lawyer.villages)
    return served <= ours if whole else bool(served & ours)


def in_scope_ids(conn: Connection, scope: Scope) -> set[str]:
    return set(conn.scalars(select(villages.c.id).where(villages_in(scope))))


def for_village(conn: Connection, village: str) -> list[Lawyer]:
    """The active lawyers who serve `village`."""
    ids = conn.scalars(
        select(lawyer_villages.c.lawyer_id).where(lawyer_villages.c.village_id == village)
    )
    return [lawyer for lawyer in _lawyers(conn, list(ids)) if lawyer.active]


def in_scope(conn: Connection, scope: Scope) -> list[Lawyer]:
    """Every lawyer serving at least one village of `scope`."""
    ids = conn.scalars(
        select(lawyer_villages.c.lawyer_id)
        .join(villages, villages.c.id == lawyer_villages.c.village_id)
        .where(villages_in(scope))
        .distinct()
    )
    return _lawyers(conn, list(ids))


# --- absences ---------------------------------------------------------------------


def add_absence(
    conn: Connection, lawyer: str, day: date, span: tuple[int, int] | None, reason: str,
    by: str,
) -> int:  # fmt: skip
    if span is not None:
        start, end = span
        if not (0 <= start < end <= 1440 and start % 5 == 0 and end % 5 == 0):
            raise InvalidInput("span", "must be a time range within the day, on 5-minute marks")
    reason = validation.text("reason", reason, max_length=100, required=False)
    row = conn.execute(
        lawyer_absences.insert().values(
            lawyer_id=lawyer,
            day=day,
            start_minute=span and span[0],
            end_minute=span and span[1],
            reason=reason,
            created_by=by,
        )
    )
    assert row.inserted_primary_key is not None
    return int(row.inserted_primary_key[0])


def remove_absence(conn: Connection, lawyer: str, absence: int) -> None:
    gone = conn.execute(
        delete(lawyer_absences).where(
            lawyer_absences.c.id == absence, lawyer_absences.c.lawyer_id == lawyer
        )
    )
    if gone.rowcount == 0:
        raise NotFound("absence", str(absence))


def absences(conn: Connection, lawyer: str, first: date, last: date) -> list[Absence]:
    rows = conn.execute(
        select(lawyer_absences)
        .where(
            lawyer_absences.c.lawyer_id == lawyer,
            lawyer_absences.c.day >= first,
            lawyer_absences.c.day <= last,
        )
        .order_by(lawyer_absences.c.day, lawyer_absences.c.start_minute)
    )
    return [Absence(r.id, r.lawyer_id, r.day, r.start_minute, r.end_minute, r.reason) for r in rows]


# --- slots ------------------------------------------------------------------------


def plan_slots(lawyer: Lawyer, first: date, last: date, away: Sequence[Absence] = ()) -> list[Slot]:
    """Every slot of the plan from local day `first` to `last` (both included) that no
    absence removes, in time order."""
    length = timedelta(minutes=lawyer.slot_minutes)
    slots: list[Slot] = []
    day = first
    while day <= last:
        for period in lawyer.plan:
            if period.weekday != day.weekday():
                continue
            midnight = datetime.combine(day, time(), LOCAL_TIME)
            start = midnight + timedelta(minutes=minutes(period.start))
            end = midnight + timedelta(minutes=minutes(period.end))
            while start + length <= end:
                if not any(a.covers(start, start + length) for a in away):
                    slots.append(Slot(_utc(start), _utc(start + length), period.village))
                start += length
        day += timedelta(days=1)
    slots.sort(key=lambda s: s.starts_at)
    return slots


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def units(start: datetime, end: datetime) -> list[datetime]:
    """The 5-minute units a booking from `start` to `end` occupies."""
    out = []
    while start < end:
        out.append(start)
        start += UNIT
    return out


def bookable(
    conn: Connection, lawyer: Lawyer, village: str, now: datetime, *, lead: bool = True
) -> list[Slot]:
    """The free slots a household of `village` may book now: inside the booking window,
    after the lead time (staff booking by phone skip it: `lead=False`), not taken."""
    earliest = now + (timedelta(minutes=lawyer.lead_minutes) if lead else timedelta())
    latest = now + timedelta(days=lawyer.window_days)
    first, last = now.astimezone(LOCAL_TIME).date(), latest.astimezone(LOCAL_TIME).date()
    candidates = [
        slot
        for slot in plan_slots(lawyer, first, last, absences(conn, lawyer.id, first, last))
        if earliest <= slot.starts_at <= latest and slot.village in (None, village)
    ]
    if not candidates:
        return []
    held = busy(conn, lawyer.id, candidates[0].starts_at, candidates[-1].ends_at)
    return [s for s in candidates if not any(u in held for u in units(s.starts_at, s.ends_at))]


def busy(conn: Connection, lawyer: str, since: datetime, until: datetime) -> set[datetime]:
    """The 5-minute units in [since, until) that live bookings of `lawyer` hold, whoever
    made them (a calendar limited to one area still shows those slots as taken)."""
    return set(
        conn.scalars(
            select(lawyer_busy.c.at).where(
                lawyer_busy.c.lawyer_id == lawyer,
                lawyer_busy.c.at >= since,
                lawyer_busy.c.at < until,
            )
        )
    )


def slot_at(conn: Connection, lawyer: Lawyer, starts_at: datetime) -> Slot | None:
    """The plan's slot that starts at `starts_at`, if the plan has one and no absence
    removes it (taken or not)."""
    day = starts_at.astimezone(LOCAL_TIME).date()
    for slot in plan_slots(lawyer, day, day, absences(conn, lawyer.id, day, day)):
        if slot.starts_at == starts_at:
            return slot
    return None
