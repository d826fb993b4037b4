"""Heartbeats reach the database as little as they can: what changes what the centre
sees at once, `last_seen_at` at its resolution, in chunks short enough that an alarm
never waits behind a whole flush; silent devices go offline once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, event, select, update

from xueliang import devices, households, telemetry
from xueliang.storage import Database
from xueliang.storage.tables import devices as devices_table
from xueliang.storage.tables import supervision_events
from xueliang.telemetry import Reading, Stored

T0 = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)


async def fleet(db: Database, n: int) -> list[str]:
    async with db.transaction() as conn:
        await households.add(conn, village="qilong", name="家", id="h")
        for i in range(n):
            await devices.add(conn, household="h", id=f"d{i}")
    return [f"d{i}" for i in range(n)]


def rows(conn: Connection) -> dict[str, Any]:
    return {r.id: r for r in conn.execute(select(devices_table))}


async def test_only_what_changes_is_written(county: Database) -> None:
    ids = await fleet(county, 3)
    known: dict[str, Stored] = {}
    first = {d: Reading(at=T0, battery=80, rssi=-60) for d in ids}
    assert (await telemetry.record(county, first, 20, known)).updated == 3
    # A second later: only rssi differs, last_seen is recent: nothing to write.
    again = {d: Reading(at=T0 + timedelta(seconds=1), battery=80, rssi=-61) for d in ids}
    assert (await telemetry.record(county, again, 20, known)).updated == 0
    # Battery low on one, a minute later for all: written, with the event once.
    later = {d: Reading(at=T0 + timedelta(seconds=61), battery=80) for d in ids}
    later["d1"] = Reading(at=T0 + timedelta(seconds=2), battery=10)
    recorded = await telemetry.record(county, later, 20, known)
    assert recorded.updated == 3 and recorded.events == [("d1", "low_battery")]
    stored = await county.run_read(rows)
    assert stored["d0"].last_seen_at == T0 + timedelta(seconds=61) and stored["d0"].rssi == -60
    assert stored["d1"].battery == 10
    # Going offline (a will) is written at once; unknown devices are reported.
    gone = {"d2": Reading(at=T0 + timedelta(seconds=62), online=False), "ghost": Reading(at=T0)}
    recorded = await telemetry.record(county, gone, 20, known)
    assert recorded.events == [("d2", "offline")] and recorded.unknown == ["ghost"]
    # A device with a short interval keeps its last_seen to a quarter of it.
    async with county.transaction() as conn:
        await conn.execute(
            update(devices_table).where(devices_table.c.id == "d0").values(heartbeat_interval_s=8)
        )
    known.clear()
    beat = {"d0": Reading(at=T0 + timedelta(seconds=64), battery=80)}
    assert (await telemetry.record(county, beat, 20, known)).updated == 1


async def test_a_big_flush_is_written_in_short_transactions(county: Database) -> None:
    ids = await fleet(county, 450)
    batches: list[int] = []

    def seen(_c: Any, _cur: Any, statement: str, parameters: Any, _ctx: Any, many: bool) -> None:
        if statement.lstrip().upper().startswith("UPDATE DEVICES"):
            batches.append(len(parameters) if many else 1)

    engine = county._sync_engine or county.engine.sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        recorded = await telemetry.record(county, {d: Reading(at=T0) for d in ids}, 20, {})
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert recorded.updated == 450
    assert batches == [telemetry.CHUNK, telemetry.CHUNK, 50]
    stored = await county.run_read(rows)
    assert all(stored[d].last_seen_at == T0 for d in ids)


async def test_silent_devices_go_offline_once(county: Database) -> None:
    ids = await fleet(county, 2)
    await telemetry.record(county, {ids[0]: Reading(at=T0)}, 20, {})
    async with county.transaction() as conn:
        await conn.execute(update(devices_table).values(heartbeat_interval_s=60))
    later = T0 + timedelta(seconds=90)
    await telemetry.record(county, {ids[1]: Reading(at=later)}, 20, {})
    assert await telemetry.mark_silent_offline(county, later) == [ids[0]]
    assert await telemetry.mark_silent_offline(county, later) == []
    async with county.read() as conn:
        kinds = (
            await conn.execute(select(supervision_events.c.device_id, supervision_events.c.kind))
        ).all()
    assert [tuple(k) for k in kinds] == [(ids[0], "offline")]


def test_the_worker_passes_on_changes_at_once_and_the_rest_at_their_resolution() -> None:
    throttle = telemetry.Throttle()
    throttle.intervals = {"fast": 8}  # "slow" has the default hour
    beat = {"slow": Reading(at=T0, battery=80), "fast": Reading(at=T0, battery=80)}
    assert set(throttle.select(beat)) == {"slow", "fast"}  # first news of each
    second = {d: Reading(at=T0 + timedelta(seconds=2), battery=80) for d in beat}
    assert set(throttle.select(second)) == {"fast"}  # 2 s ≥ 8 s / 4; the hour needs 60 s
    same_battery = {"slow": Reading(at=T0 + timedelta(seconds=3))}  # battery not said
    assert throttle.select(same_battery) == {}
    changed = {"slow": Reading(at=T0 + timedelta(seconds=4), battery=15)}
    assert set(throttle.select(changed)) == {"slow"}
    gone = {"slow": Reading(at=T0 + timedelta(seconds=5), online=False)}
    assert set(throttle.select(gone)) == {"slow"}
    later = {"slow": Reading(at=T0 + timedelta(seconds=6), online=False)}
    assert throttle.select(later) == {}
    throttle.forget(later)  # not delivered: the next one goes
    assert set(throttle.select(later)) == {"slow"}
    minute = {"slow": Reading(at=T0 + timedelta(seconds=67), online=False)}
    assert set(throttle.select(minute)) == {"slow"}
