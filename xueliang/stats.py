"""Alarm statistics for the staff console: alarms per village and kind, response times
per month and level, counts by state, and the CSV export. Read-only, synchronous Core
queries for `Database.run_read`; the scope and the period are applied in SQL."""

from __future__ import annotations

import csv
import io
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, get_args

from sqlalchemy import ColumnElement, Connection, select

from xueliang.alarm_board import in_scope
from xueliang.alarms import State
from xueliang.errors import InvalidInput
from xueliang.geography import LOCAL_TIME, Scope
from xueliang.storage.tables import alarms, villages

# Months are the county's months: an alarm at 00:30 on 1 February local time is
STATES: tuple[str, ...] = get_args(State)
# A cancelled alarm was withdrawn by the household, not handled by anyone.
RESOLUTIONS: tuple[str, ...] = ("resolved", "false_alarm")
_LEVELS = {"town": 0, "county": 1}
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

CSV_COLUMNS: tuple[str, ...] = (
    "id", "raised_at", "village", "village_name", "town", "kind", "priority", "level",
    "state", "source", "presses", "acknowledged_at", "acknowledged_by",
    "seconds_to_acknowledge", "closed_at", "closed_by", "seconds_to_close", "unregistered",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class VillageKindCount:
    """Alarms of one kind in one village; `village` is None for unregistered devices."""

    village: str | None
    village_name: str | None
    kind: str
    count: int


@dataclass(frozen=True, slots=True)
class Timing:
    """How fast one level answered in one local month; seconds are None without samples."""

    level: str
    month: str  # "YYYY-MM", Asia/Shanghai
    alarms: int
    acknowledged: int
    ack_p50_s: float | None
    ack_p95_s: float | None
    resolved: int
    resolve_p50_s: float | None
    resolve_p95_s: float | None


@dataclass(frozen=True, slots=True)
class AlarmStats:
    by_village_kind: list[VillageKindCount]
    timings: list[Timing]
    totals: dict[str, int]  # every state, in lifecycle order, zeros included

    @property
    def total(self) -> int:
        return sum(self.totals.values())


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0–100) by linear interpolation between closest ranks, as
    numpy's default (Hyndman & Fan type 7); None when there are no values."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0–100, not {q}")
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    below = math.floor(rank)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (rank - below)


def alarm_stats(conn: Connection, scope: Scope, since: datetime, until: datetime) -> AlarmStats:
    """Statistics of the alarms in `scope` raised in [since, until)."""
    # One scan serves all three views, so their numbers agree even while alarms arrive.
    rows = conn.execute(
        select(
            alarms.c.village_id,
            villages.c.name.label("village_name"),
            alarms.c.kind,
            alarms.c.level,
            alarms.c.state,
            alarms.c.raised_at,
            alarms.c.acknowledged_at,
            alarms.c.closed_at,
        )
        .select_from(alarms.outerjoin(villages, villages.c.id == alarms.c.village_id))
        .where(*_selected(scope, since, until))
    ).all()
    return AlarmStats(
        by_village_kind=_by_village_kind(rows),
        timings=_timings(rows),
        totals=_totals(rows),
    )


def alarm_rows_csv(
    conn: Connection, scope: Scope, since: datetime, until: datetime, limit: int = 100_000
) -> str:
    """The alarms in `scope` raised in [since, until), oldest first, as CSV with a header
    row; more than `limit` alarms is refused rather than silently cut short."""
    rows = conn.execute(
        select(alarms, villages.c.name.label("village_name"))
        .select_from(alarms.outerjoin(villages, villages.c.id == alarms.c.village_id))
        .where(*_selected(scope, since, until))
        .order_by(alarms.c.raised_at, alarms.c.id)
        .limit(limit + 1)
    ).all()
    if len(rows) > limit:
        raise InvalidInput("period", f"more than {limit} alarms to export; choose a shorter one")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    writer.writerows(_csv_row(row) for row in rows)
    return out.getvalue()


def _selected(scope: Scope, since: datetime, until: datetime) -> list[ColumnElement[bool]]:
    return [in_scope(scope), alarms.c.raised_at >= since, alarms.c.raised_at < until]


def _by_village_kind(rows: Iterable[Any]) -> list[VillageKindCount]:
    counts = Counter((row.village_id, row.village_name, row.kind) for row in rows)
    # Sorted here, not in SQL: PostgreSQL's collation would order names unlike SQLite.
    ordered = sorted(
        counts.items(),
        key=lambda item: (item[0][0] is None, item[0][1] or "", item[0][0] or "", item[0][2]),
    )
    return [VillageKindCount(v, name, kind, n) for (v, name, kind), n in ordered]


def _timings(rows: Iterable[Any]) -> list[Timing]:
    groups: defaultdict[tuple[str, str], list[Any]] = defaultdict(list)
    for row in rows:
        month = row.raised_at.astimezone(LOCAL_TIME).strftime("%Y-%m")
        groups[month, row.level].append(row)
    keys = sorted(groups, key=lambda key: (key[0], _LEVELS.get(key[1], len(_LEVELS)), key[1]))
    return [_timing(level, month, groups[month, level]) for month, level in keys]


def _timing(level: str, month: str, rows: list[Any]) -> Timing:
    ack = [_seconds(r.raised_at, r.acknowledged_at) for r in rows if r.acknowledged_at]
    done = [
        _seconds(r.raised_at, r.closed_at)
        for r in rows
        if r.state in RESOLUTIONS and r.closed_at is not None
    ]
    return Timing(
        level=level,
        month=month,
        alarms=len(rows),
        acknowledged=len(ack),
        ack_p50_s=percentile(ack, 50),
        ack_p95_s=percentile(ack, 95),
        resolved=len(done),
        resolve_p50_s=percentile(done, 50),
        resolve_p95_s=percentile(done, 95),
    )


def _totals(rows: Iterable[Any]) -> dict[str, int]:
    totals = dict.fromkeys(STATES, 0)
    totals.update(Counter(row.state for row in rows))
    return totals


def _csv_row(row: Any) -> list[str | int]:
    return [
        row.id,
        _iso(row.raised_at),
        csv_text(row.village_id),
        csv_text(row.village_name),
        csv_text(row.town_id),
        csv_text(row.kind),
        row.priority,
        csv_text(row.level),
        csv_text(row.state),
        csv_text(row.source),
        row.presses,
        _iso(row.acknowledged_at),
        csv_text(row.acknowledged_by),
        _duration(row.raised_at, row.acknowledged_at),
        _iso(row.closed_at),
        csv_text(row.closed_by),
        _duration(row.raised_at, row.closed_at),
        "true" if row.unregistered else "false",
    ]


def csv_text(value: str | None) -> str:
    """A stored string as a cell no spreadsheet runs as a formula (names are typed
    by people: `=HYPERLINK(...)` must stay text)."""
    if value is None:
        return ""
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def _iso(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _duration(start: datetime, end: datetime | None) -> str:
    return "" if end is None else f"{_seconds(start, end):.3f}"


def _seconds(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds()
