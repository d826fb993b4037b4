"""Alarm statistics on both backends: what each scope may see, response-time
percentiles checked against hand-computed values, months as the county counts them,
and a CSV export a spreadsheet cannot be tricked into running."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import update

from xueliang import geography, households
from xueliang.alarms import Action, AlarmService, RaiseRequest
from xueliang.errors import InvalidInput
from xueliang.geography import LOCAL_TIME, Scope
from xueliang.stats import (
    CSV_COLUMNS,
    AlarmStats,
    Timing,
    VillageKindCount,
    alarm_rows_csv,
    alarm_stats,
    percentile,
)
from xueliang.storage import Database
from xueliang.storage.tables import alarms
from xueliang.topics import Topics

# January and February 2024 in the county's own calendar.
SINCE = datetime(2024, 1, 1, tzinfo=LOCAL_TIME)
UNTIL = datetime(2024, 3, 1, tzinfo=LOCAL_TIME)
FORMULA_VILLAGE = '=HYPERLINK("http://evil.example","点我")'
FORMULA_STAFF = "@SUM(A1)"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


async def seed(
    db: Database,
    request: RaiseRequest,
    raised_at: datetime,
    actions: tuple[Action, ...] = (),
    *,
    ack_s: float | None = None,
    close_s: float | None = None,
    level: str = "town",
    by: str = "duty",
) -> int:
    """An alarm taken through the real service, then moved to exact times."""
    service = AlarmService(db, Topics())
    [raised] = await service.raise_many([request])
    for action in actions:
        await service.act(raised.alarm, action, by=by, source="console")
    values: dict[str, Any] = {"raised_at": raised_at, "level": level}
    if ack_s is not None:
        values["acknowledged_at"] = raised_at + timedelta(seconds=ack_s)
    if close_s is not None:
        values["closed_at"] = raised_at + timedelta(seconds=close_s)
    async with db.transaction() as conn:
        await conn.execute(update(alarms).where(alarms.c.id == raised.alarm).values(**values))
    return raised.alarm


def tv(household: str, kind: str) -> RaiseRequest:
    return RaiseRequest(source="tv", kind=kind, household=household)  # type: ignore[arg-type]


@pytest.fixture
async def alarms_db(county: Database) -> Database:
    """Seven alarms in January–February 2024 (local time) and two just outside:

    qilong (puxing): panic 10 s/100 s resolved, fire 20 s/200 s false alarm,
      panic 30 s then cancelled, medical 100 s/400 s resolved — all January, town level;
    other (puxing, renamed to a formula): panic at 00:30 on 1 February local time
      (31 January UTC), escalated, acknowledged after 600 s by a formula-named person;
    anxicun (anxi): fire at 23:59 on 31 January local time, not yet acknowledged;
    an unregistered button: panic in January, county level.
    """
    async with county.transaction() as conn:
        await geography.put_village(conn, "other", FORMULA_VILLAGE, "puxing")
        for household, village in (
            ("q1", "qilong"), ("q2", "qilong"), ("q3", "qilong"), ("q4", "qilong"),
            ("o1", "other"), ("a1", "anxicun"), ("a2", "anxicun"),
        ):  # fmt: skip
            await households.add(conn, village=village, name=f"{household}家", id=household)
    jan = utc(2024, 1, 10, 2)
    await seed(county, tv("q1", "panic"), jan, ("acknowledge", "resolve"), ack_s=10, close_s=100)
    await seed(county, tv("q2", "fire"), jan, ("acknowledge", "false_alarm"), ack_s=20, close_s=200)
    await seed(county, tv("q3", "panic"), jan, ("acknowledge", "cancel"), ack_s=30, close_s=50)
    await seed(county, tv("q4", "medical"), jan, ("dispatch", "resolve"), ack_s=100, close_s=400)
    await seed(
        county, tv("o1", "panic"), utc(2024, 1, 31, 16, 30), ("acknowledge",),
        ack_s=600, level="county", by=FORMULA_STAFF,
    )  # fmt: skip
    await seed(county, tv("a1", "fire"), utc(2024, 1, 31, 15, 59))
    ghost = RaiseRequest(source="button", kind="panic", device="ghost-7", message_id="m1")
    await seed(county, ghost, utc(2024, 1, 20), level="county")
    # Outside [SINCE, UNTIL): 23:00 on 31 December local time, and exactly UNTIL.
    await seed(county, tv("q1", "test"), utc(2023, 12, 31, 15))
    await seed(county, tv("a2", "test"), UNTIL.astimezone(UTC))
    return county


async def stats(db: Database, scope: Scope) -> AlarmStats:
    return await db.run_read(partial(alarm_stats, scope=scope, since=SINCE, until=UNTIL))


async def export(db: Database, scope: Scope, limit: int = 100_000) -> list[dict[str, str]]:
    text = await db.run_read(
        partial(alarm_rows_csv, scope=scope, since=SINCE, until=UNTIL, limit=limit)
    )
    reader = csv.reader(io.StringIO(text))
    header = next(reader)
    assert tuple(header) == CSV_COLUMNS
    return [dict(zip(header, row, strict=True)) for row in reader]


# --- percentile ----------------------------------------------------------------------


def test_percentile_interpolates_between_closest_ranks() -> None:
    """The method is numpy's default, so figures can be checked with a spreadsheet
    (PERCENTILE.INC) or numpy."""
    assert percentile([], 50) is None
    assert percentile([7.0], 95) == 7.0
    assert percentile([100.0, 10.0, 30.0, 20.0], 50) == pytest.approx(25.0)
    assert percentile([10.0, 20.0, 30.0, 100.0], 95) == pytest.approx(89.5)
    assert percentile([10.0, 20.0, 30.0, 100.0], 0) == 10.0
    assert percentile([10.0, 20.0, 30.0, 100.0], 100) == 100.0
    assert percentile([float(i) for i in range(1, 11)], 95) == pytest.approx(9.55)
    with pytest.raises(ValueError, match="0–100"):
        percentile([1.0], 101)


@given(st.lists(st.floats(0, 1e6), min_size=1), st.floats(0, 100), st.floats(0, 100))
def test_percentile_is_monotonic_and_bounded(values: list[float], a: float, b: float) -> None:
    low, high = sorted((a, b))
    p_low, p_high = percentile(values, low), percentile(values, high)
    assert p_low is not None and p_high is not None
    assert min(values) <= p_low <= p_high * (1 + 1e-12) <= max(values) * (1 + 1e-12)


# --- statistics ----------------------------------------------------------------------


async def test_county_sees_everything_in_the_period(alarms_db: Database) -> None:
    """The county's page counts each village's alarms by kind, unregistered last."""
    result = await stats(alarms_db, Scope("county", "xinjin"))
    assert result.by_village_kind == [
        VillageKindCount("other", FORMULA_VILLAGE, "panic", 1),
        VillageKindCount("anxicun", "安西村", "fire", 1),
        VillageKindCount("qilong", "骑龙社区", "fire", 1),
        VillageKindCount("qilong", "骑龙社区", "medical", 1),
        VillageKindCount("qilong", "骑龙社区", "panic", 2),
        VillageKindCount(None, None, "panic", 1),
    ]
    assert result.totals == {
        "received": 2, "acknowledged": 1, "dispatched": 0,
        "resolved": 2, "false_alarm": 1, "cancelled": 1,
    }  # fmt: skip
    assert result.total == 7


async def test_response_time_percentiles(alarms_db: Database) -> None:
    """Acknowledge times 10, 20, 30, 100 s: p50 25 s, p95 30 + 0.85 × 70 = 89.5 s.
    Resolutions 100, 200 (false alarm), 400 s — not the cancelled one: p50 200 s,
    p95 200 + 0.9 × 200 = 380 s. Town level before county within a month."""
    result = await stats(alarms_db, Scope("county", "xinjin"))
    assert [rounded(t) for t in result.timings] == [
        Timing("town", "2024-01", 5, 4, 25.0, 89.5, 3, 200.0, 380.0),
        Timing("county", "2024-01", 1, 0, None, None, 0, None, None),
        Timing("county", "2024-02", 1, 1, 600.0, 600.0, 0, None, None),
    ]


def rounded(timing: Timing) -> Timing:
    """The timing with its seconds rounded to µs (interpolation is float arithmetic)."""

    def r(seconds: float | None) -> float | None:
        return None if seconds is None else round(seconds, 6)

    return replace(
        timing,
        ack_p50_s=r(timing.ack_p50_s),
        ack_p95_s=r(timing.ack_p95_s),
        resolve_p50_s=r(timing.resolve_p50_s),
        resolve_p95_s=r(timing.resolve_p95_s),
    )


async def test_months_are_local(alarms_db: Database) -> None:
    """00:30 on 1 February in the county is still January in UTC; 23:59 on 31 January
    is 15:59 UTC: each counts in the month the duty staff lived it."""
    other = await stats(alarms_db, Scope("village", "other"))
    assert [(t.month, t.alarms) for t in other.timings] == [("2024-02", 1)]
    anxi = await stats(alarms_db, Scope("town", "anxi"))
    assert [(t.month, t.alarms) for t in anxi.timings] == [("2024-01", 1)]


async def test_scopes_see_only_their_own_alarms(alarms_db: Database) -> None:
    """A town's staff never count another town's alarms, a village only its own, and
    the unregistered device's alarm is the county's alone."""
    puxing = await stats(alarms_db, Scope("town", "puxing"))
    assert {c.village for c in puxing.by_village_kind} == {"qilong", "other"}
    assert puxing.total == 5
    anxi = await stats(alarms_db, Scope("town", "anxi"))
    assert anxi.by_village_kind == [VillageKindCount("anxicun", "安西村", "fire", 1)]
    qilong = await stats(alarms_db, Scope("village", "qilong"))
    assert {c.village for c in qilong.by_village_kind} == {"qilong"}
    assert qilong.total == 4 and qilong.totals["cancelled"] == 1
    nowhere = await stats(alarms_db, Scope("village", "nowhere"))
    assert (nowhere.by_village_kind, nowhere.timings, nowhere.total) == ([], [], 0)


# --- export --------------------------------------------------------------------------


async def test_csv_export(alarms_db: Database) -> None:
    """One row per alarm, oldest first, times in UTC; names typed by people cannot
    become spreadsheet formulas."""
    rows = await export(alarms_db, Scope("county", "xinjin"))
    assert len(rows) == 7
    assert [r["raised_at"] for r in rows] == sorted(r["raised_at"] for r in rows)
    escalated = next(r for r in rows if r["village"] == "other")
    assert escalated["village_name"] == "'" + FORMULA_VILLAGE
    assert escalated["acknowledged_by"] == "'" + FORMULA_STAFF
    assert escalated["raised_at"] == "2024-01-31T16:30:00.000Z"
    assert escalated["acknowledged_at"] == "2024-01-31T16:40:00.000Z"
    assert (escalated["seconds_to_acknowledge"], escalated["seconds_to_close"]) == ("600.000", "")
    assert (escalated["level"], escalated["state"], escalated["town"]) == (
        "county", "acknowledged", "puxing"
    )  # fmt: skip
    ghost = next(r for r in rows if r["unregistered"] == "true")
    assert (ghost["village"], ghost["village_name"], ghost["town"]) == ("", "", "")
    resolved = next(r for r in rows if r["state"] == "false_alarm")
    assert (resolved["kind"], resolved["priority"], resolved["source"]) == ("fire", "1", "tv")
    assert resolved["seconds_to_close"] == "200.000" and resolved["closed_by"] == "duty"


async def test_csv_export_follows_scope_and_refuses_too_much(alarms_db: Database) -> None:
    """A town's export holds only its alarms; an export too large to be complete is
    refused rather than silently cut short."""
    anxi = await export(alarms_db, Scope("town", "anxi"))
    assert [(r["village"], r["kind"]) for r in anxi] == [("anxicun", "fire")]
    assert len(await export(alarms_db, Scope("village", "qilong"), limit=4)) == 4
    with pytest.raises(InvalidInput):
        await export(alarms_db, Scope("village", "qilong"), limit=3)
