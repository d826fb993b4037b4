"""The family lawyer's plan, free slots and bookings, on SQLite and PostgreSQL: no double
booking however many processes try at once, cut-offs, scope, hostile values."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

import pytest

from xueliang import bookings, households, lawyers
from xueliang.errors import Conflict, InvalidInput, NotFound
from xueliang.geography import LOCAL_TIME, Scope
from xueliang.storage import Database

# A Monday 08:00 in the county: the plan below starts at 09:00 on weekdays.
MONDAY = datetime(2026, 11, 30, 8, 0, tzinfo=LOCAL_TIME).astimezone(UTC)
PLAN = [
    {"weekday": d, "start": s, "end": e}
    for d in range(5)
    for s, e in (("09:00", "12:00"), ("14:00", "17:00"))
]


def lawyer_data(**changes: Any) -> dict[str, Any]:
    return {"id": "zhou", "name": "周律师", "phone": "028-1", "practice": "婚姻家庭",
            "villages": ["qilong"], "plan": PLAN, "slot_minutes": 30, "lead_minutes": 120,
            "window_days": 14, "cancel_cutoff_minutes": 120, **changes}  # fmt: skip


def at(day: int, clock: str) -> datetime:
    """Local `clock` on the `day`-th day after MONDAY's date, in UTC."""
    hours, minutes = map(int, clock.split(":"))
    local = datetime.combine(
        date(2026, 11, 30) + timedelta(days=day), datetime.min.time(), LOCAL_TIME
    ).replace(hour=hours, minute=minutes)
    return local.astimezone(UTC)


@pytest.fixture
async def office(county: Database) -> Database:
    async with county.transaction() as conn:
        for n in range(60):
            await households.add(conn, village="qilong", name=f"家{n}", id=f"q{n}")
        await households.add(conn, village="anxicun", name="安西家", id="a1")
        await conn.run_sync(lawyers.put, lawyers.checked(lawyer_data()), MONDAY)
    return county


async def book(db: Database, household: str, starts: datetime, **extra: Any) -> bookings.Booking:
    options: dict[str, Any] = {"topic": "family", "channel": "tv", "by": household, "now": MONDAY}
    options.update(extra)
    return await db.run_write(
        partial(bookings.book, lawyer="zhou", household=household, starts_at=starts, **options)
    )


async def test_free_slots_follow_plan_breaks_lead_time_and_absences(office: Database) -> None:
    lawyer = await office.run_read(partial(lawyers.get, id="zhou"))
    slots = await office.run_read(
        partial(lawyers.bookable, lawyer=lawyer, village="qilong", now=MONDAY)
    )
    # 08:00 + 2 h lead: the first slot is 10:00; none in the lunch break; none at weekends.
    assert slots[0].starts_at == at(0, "10:00")
    monday = [s.local_start.strftime("%H:%M") for s in slots if s.day == date(2026, 11, 30)]
    assert monday == ["10:00", "10:30", "11:00", "11:30", "14:00", "14:30", "15:00", "15:30",
                      "16:00", "16:30"]  # fmt: skip
    assert not [s for s in slots if s.local_start.weekday() >= 5]
    assert slots[-1].starts_at <= MONDAY + timedelta(days=14)
    async with office.transaction() as conn:
        await conn.run_sync(
            partial(lawyers.add_absence, lawyer="zhou", day=date(2026, 12, 1), span=None,
                    reason="开庭", by="staff")
        )  # fmt: skip
        await conn.run_sync(
            partial(lawyers.add_absence, lawyer="zhou", day=date(2026, 12, 2), span=(600, 690),
                    reason="", by="staff")
        )  # fmt: skip
    slots = await office.run_read(
        partial(lawyers.bookable, lawyer=lawyer, village="qilong", now=MONDAY)
    )
    assert not [s for s in slots if s.day == date(2026, 12, 1)]
    wednesday = [s.local_start.strftime("%H:%M") for s in slots if s.day == date(2026, 12, 2)]
    assert wednesday[:3] == ["09:00", "09:30", "11:30"]  # 10:00–11:30 away
    await book(office, "q1", at(0, "10:00"))
    slots = await office.run_read(
        partial(lawyers.bookable, lawyer=lawyer, village="qilong", now=MONDAY)
    )
    assert slots[0].starts_at == at(0, "10:30")
    # A household of a village the lawyer does not serve sees no lawyer at all.
    assert await office.run_read(partial(lawyers.for_village, village="anxicun")) == []


async def test_fifty_concurrent_attempts_one_winner(office: Database, db_url: str) -> None:
    """Fifty households, five separate engines (as five processes would be), one slot:
    exactly one booking, the rest told it is taken."""
    engines = [Database(db_url) for _ in range(5)]
    slot = at(1, "09:00")
    try:
        results = await asyncio.gather(
            *(book(engines[n % 5], f"q{n}", slot) for n in range(50)), return_exceptions=True
        )
    finally:
        for engine in engines:
            await engine.close()
    won = [r for r in results if isinstance(r, bookings.Booking)]
    lost = [r for r in results if not isinstance(r, bookings.Booking)]
    assert len(won) == 1, results
    assert all(isinstance(r, bookings.SlotTaken) for r in lost), lost
    taken = await office.run_read(
        partial(
            bookings.calendar,
            scope=Scope("county", "xinjin"),
            since=slot,
            until=slot + timedelta(hours=1),
        )
    )
    assert [b.household for b in taken] == [won[0].household]
    assert (
        await office.run_read(partial(bookings.holder, lawyer="zhou", starts_at=slot))
        == won[0].household
    )


async def test_overlap_refused_even_when_slot_length_changes(office: Database) -> None:
    await book(office, "q1", at(1, "09:30"))  # 09:30–10:00
    async with office.transaction() as conn:
        await conn.run_sync(lawyers.put, lawyers.checked(lawyer_data(slot_minutes=45)), MONDAY)
    # The new plan's 09:45 slot would overlap the old 09:30 booking.
    with pytest.raises(bookings.SlotTaken):
        await book(office, "q2", at(1, "09:45"))
    await book(office, "q2", at(1, "10:30"))


async def test_cancel_frees_the_slot_and_respects_cut_off(office: Database) -> None:
    first = await book(office, "q1", at(1, "09:00"))
    with pytest.raises(NotFound):  # another household's booking does not exist for q2
        await office.run_write(
            partial(
                bookings.cancel, id=first.id, reason="solved", by="q2", now=MONDAY, household="q2"
            )
        )
    with pytest.raises(InvalidInput):  # staff-only reason
        await office.run_write(
            partial(
                bookings.cancel,
                id=first.id,
                reason="lawyer_absent",
                by="q1",
                now=MONDAY,
                household="q1",
            )
        )
    late = at(1, "08:00")  # 60 min before; the cut-off is 120
    with pytest.raises(bookings.TooLate):
        await office.run_write(
            partial(
                bookings.cancel, id=first.id, reason="solved", by="q1", now=late, household="q1"
            )
        )
    done = await office.run_write(
        partial(bookings.cancel, id=first.id, reason="solved", by="q1", now=MONDAY, household="q1")
    )
    assert done.state == "cancelled" and done.cancel_reason == "solved"
    with pytest.raises(Conflict):
        await office.run_write(
            partial(
                bookings.cancel, id=first.id, reason="solved", by="q1", now=MONDAY, household="q1"
            )
        )
    again = await book(office, "q2", at(1, "09:00"))
    assert again.state == "booked"


async def test_refusals(office: Database) -> None:
    with pytest.raises(InvalidInput):  # not on the plan's grid
        await book(office, "q1", at(1, "09:10"))
    with pytest.raises(InvalidInput):  # lunch break
        await book(office, "q1", at(1, "12:30"))
    with pytest.raises(bookings.TooLate):  # inside the lead time
        await book(office, "q1", at(0, "09:30"))
    with pytest.raises(bookings.TooLate):  # past
        await book(office, "q1", at(-3, "09:30"))
    with pytest.raises(InvalidInput):  # beyond the window
        await book(office, "q1", at(21, "09:00"))
    with pytest.raises(NotFound):  # the lawyer does not serve anxicun
        await book(office, "a1", at(1, "09:00"))
    with pytest.raises(NotFound):
        await book(office, "nobody", at(1, "09:00"))
    for topic in ("", "family'; DROP TABLE bookings;--", "x" * 10_000):
        with pytest.raises(InvalidInput):
            await book(office, "q1", at(1, "09:00"), topic=topic)
    with pytest.raises(InvalidInput):
        await book(office, "q1", at(1, "09:00"), channel="fax")
    # Staff booking by phone may take a slot inside the lead time, never a past one.
    staff = await book(
        office, "q1", at(0, "09:30"), channel="phone", scope=Scope("village", "qilong")
    )
    assert staff.channel == "phone"
    with pytest.raises(NotFound):  # staff of another village
        await book(office, "q2", at(0, "10:00"), channel="phone", scope=Scope("village", "anxicun"))


async def test_a_household_holds_at_most_three(office: Database) -> None:
    for hour in ("09:00", "09:30", "10:00"):
        await book(office, "q1", at(1, hour))
    with pytest.raises(bookings.TooMany):
        await book(office, "q1", at(1, "10:30"))


async def test_close_notes_calendar_and_csv(office: Database) -> None:
    made = await book(office, "q1", at(1, "09:00"))
    village = Scope("village", "qilong")
    with pytest.raises(bookings.TooLate):
        await office.run_write(
            partial(bookings.close, id=made.id, outcome="done", by="s", now=MONDAY, scope=village)
        )
    after = at(1, "09:40")
    with pytest.raises(NotFound):
        await office.run_write(
            partial(
                bookings.close,
                id=made.id,
                outcome="done",
                by="s",
                now=after,
                scope=Scope("village", "anxicun"),
            )
        )
    closed = await office.run_write(
        partial(bookings.close, id=made.id, outcome="no_show", by="s", now=after, scope=village)
    )
    assert closed.state == "no_show"
    await office.run_write(
        partial(
            bookings.add_note, id=made.id, text='=HYPERLINK("x")', by="s", now=after, scope=village
        )
    )
    with pytest.raises(InvalidInput):
        await office.run_write(
            partial(bookings.add_note, id=made.id, text=" ", by="s", now=after, scope=village)
        )
    with pytest.raises(InvalidInput):
        await office.run_write(
            partial(
                bookings.add_note, id=made.id, text="x" * 5000, by="s", now=after, scope=village
            )
        )
    assert [n.text for n in await office.run_read(partial(bookings.notes, id=made.id))] == [
        '=HYPERLINK("x")'
    ]
    text = await office.run_read(
        partial(
            bookings.calendar_csv, scope=village, since=MONDAY, until=MONDAY + timedelta(days=7)
        )
    )
    lines = text.splitlines()
    assert lines[0].startswith("booking,starts_at") and len(lines) == 2 and "no_show" in lines[1]
    empty = await office.run_read(
        partial(
            bookings.calendar,
            scope=Scope("village", "anxicun"),
            since=MONDAY,
            until=MONDAY + timedelta(days=7),
        )
    )
    assert empty == []


async def test_today_and_my_bookings(office: Database) -> None:
    soon = await book(office, "q1", at(0, "15:00"))
    later = await book(office, "q1", at(2, "09:00"))
    assert (await office.run_read(partial(bookings.today, household="q1", now=MONDAY))) == soon
    assert await office.run_read(partial(bookings.today, household="q2", now=MONDAY)) is None
    mine = await office.run_read(partial(bookings.of_household, household="q1", now=MONDAY))
    assert [b.id for b in mine] == [soon.id, later.id]


def test_plan_validation() -> None:
    bad: dict[str, Any]
    for bad in (
        {"plan": [{"weekday": 7, "start": "09:00", "end": "10:00"}]},
        {"plan": [{"weekday": 0, "start": "10:00", "end": "09:00"}]},
        {"plan": [{"weekday": 0, "start": "09:03", "end": "10:00"}]},
        {"plan": [{"weekday": 0, "start": "09:00", "end": "11:00"},
                  {"weekday": 0, "start": "10:00", "end": "12:00"}]},
        {"plan": [{"weekday": 0, "start": "09:00", "end": "10:00", "village": "elsewhere"}]},
        {"slot_minutes": 7}, {"slot_minutes": 0}, {"window_days": 1000}, {"villages": []},
        {"name": "<script>\x00"}, {"phone": "call me"}, {"id": "../x"},
    ):  # fmt: skip
        with pytest.raises(InvalidInput):
            lawyers.checked(lawyer_data(**bad))


async def test_unknown_village_refused(county: Database) -> None:
    async with county.transaction() as conn:
        with pytest.raises(NotFound):
            await conn.run_sync(
                lawyers.put, lawyers.checked(lawyer_data(villages=["nowhere"])), MONDAY
            )


async def test_one_household_cannot_pass_the_limit_by_racing(office: Database, db_url: str) -> None:
    """Eight slots at once for one household, through five engines: three at most."""
    engines = [Database(db_url) for _ in range(5)]
    times = [
        at(1, t) for t in ("09:00", "09:30", "10:00", "10:30", "11:00", "11:30", "14:00", "14:30")
    ]
    try:
        results = await asyncio.gather(
            *(book(engines[n % 5], "q1", starts) for n, starts in enumerate(times)),
            return_exceptions=True,
        )
    finally:
        for engine in engines:
            await engine.close()
    won = [r for r in results if isinstance(r, bookings.Booking)]
    assert len(won) == bookings.MAX_UPCOMING, results
    assert all(isinstance(r, bookings.TooMany) for r in results if r not in won)
