"""Device liveness: heartbeats and online/offline status, written in batches, and the
supervision events (offline, back online, low battery) they give rise to. These never
enter the alarm queue."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import Connection, bindparam, func, select, update

from xueliang.storage import Database
from xueliang.storage.tables import devices, supervision_events
from xueliang.storage.types import utcnow


@dataclass(frozen=True, slots=True)
class Reading:
    """The latest news of one device: a heartbeat, a status message, or an alarm's
    battery figure. Absent values leave what is stored alone."""

    at: datetime
    battery: int | None = None
    rssi: int | None = None
    firmware: str | None = None
    online: bool = True

    def merge(self, newer: Reading) -> Reading:
        return Reading(
            at=max(self.at, newer.at),
            battery=newer.battery if newer.battery is not None else self.battery,
            rssi=newer.rssi if newer.rssi is not None else self.rssi,
            firmware=newer.firmware if newer.firmware is not None else self.firmware,
            online=newer.online,
        )


@dataclass(frozen=True, slots=True)
class Recorded:
    updated: int
    unknown: list[str]
    events: list[tuple[str, str]]  # (device, kind)


@dataclass(frozen=True, slots=True)
class Stored:
    """What the database holds of one device's liveness (as this process last wrote
    or read it)."""

    last_seen_at: datetime | None
    battery: int | None
    rssi: int | None
    firmware: str | None
    online: bool | None
    interval_s: int

    def due(self, reading: Reading) -> bool:
        """True when `reading` must be written: it changes what the centre sees (online,
        battery, firmware), or `last_seen_at` is older than the resolution it needs
        (a quarter of the device's heartbeat interval, at most `LAST_SEEN_RESOLUTION`)."""
        if reading.online != self.online or self.last_seen_at is None:
            return True
        if reading.battery not in (None, self.battery) or reading.firmware not in (
            None,
            self.firmware,
        ):
            return True
        resolution = min(LAST_SEEN_RESOLUTION, timedelta(seconds=self.interval_s / 4))
        return reading.at - self.last_seen_at >= resolution

    def after(self, reading: Reading) -> Stored:
        """What is stored once `reading` is written (absent values leave it alone)."""
        return replace(
            self, last_seen_at=reading.at, online=reading.online,
            battery=self.battery if reading.battery is None else reading.battery,
            rssi=self.rssi if reading.rssi is None else reading.rssi,
            firmware=self.firmware if reading.firmware is None else reading.firmware,
        )  # fmt: skip


# A device heard every second is not written every second: `last_seen_at` only needs to
# be good enough to find silent devices (intervals are minutes to hours).
LAST_SEEN_RESOLUTION = timedelta(seconds=60)
# Rows per write transaction: an alarm waiting for the writer waits behind one chunk,
# never behind a whole flush of thousands of devices.
CHUNK = 200
DEFAULT_INTERVAL_S = 3600  # the column's default
# Devices `Throttle` remembers at most (a county has tens of thousands of buttons).
MAX_REMEMBERED = 200_000


class Throttle:
    """Which readings are worth passing on to be written, judged where they arrive (the
    telemetry worker), so thousands of heartbeats a second become a few readings:
    the same test as `Stored.due`, against what was last passed on. `intervals` (the
    devices' heartbeat intervals) are refreshed from the database by the caller; an
    unknown device counts with the default interval."""

    def __init__(self) -> None:
        self.intervals: dict[str, int] = {}
        self._passed: dict[str, Stored] = {}

    def select(self, readings: Mapping[str, Reading]) -> dict[str, Reading]:
        if len(self._passed) > MAX_REMEMBERED:  # ids made up by a flood: start afresh
            self._passed.clear()
        chosen: dict[str, Reading] = {}
        for device, reading in readings.items():
            interval = self.intervals.get(device, DEFAULT_INTERVAL_S)
            last = self._passed.get(device)
            if last is not None and not replace(last, interval_s=interval).due(reading):
                continue
            chosen[device] = reading
            before = last or Stored(None, None, None, None, None, interval)
            self._passed[device] = before.after(reading)
        return chosen

    def forget(self, readings: Mapping[str, Reading]) -> None:
        """These were not delivered after all: pass the next ones of these devices on."""
        for device in readings:
            self._passed.pop(device, None)


def intervals(conn: Connection) -> dict[str, int]:
    """Every device's heartbeat interval (for `Throttle`)."""
    query = select(devices.c.id, devices.c.heartbeat_interval_s)
    return {row.id: row.heartbeat_interval_s for row in conn.execute(query)}


async def record(
    db: Database, readings: Mapping[str, Reading], low_battery: int,
    known: dict[str, Stored] | None = None,
) -> Recorded:  # fmt: skip
    """Write what changed in many devices' readings, a chunk of devices per transaction
    (never one write per heartbeat, never one long write). `known` mirrors the stored
    rows between calls (filled from the database, on a reader, for devices it lacks);
    readings that change nothing but a recent `last_seen_at` are not written."""
    known = {} if known is None else known
    if not readings:
        return Recorded(0, [], [])
    missing = sorted(set(readings) - set(known))
    if missing:
        known.update(await db.run_read(partial(_stored, missing)))
    unknown = sorted(set(readings) - set(known))
    due = {d: r for d, r in readings.items() if d in known and known[d].due(r)}
    events: list[tuple[str, str]] = []
    batch = sorted(due)
    for start in range(0, len(batch), CHUNK):
        chunk = {d: due[d] for d in batch[start : start + CHUNK]}
        written = {d: known[d].after(r) for d, r in chunk.items()}
        found = _changes(chunk, known, low_battery)
        await db.run_write(partial(_write, [_values(d, s) for d, s in written.items()], found))
        events += found
        known.update(written)
    return Recorded(len(due), unknown, events)


def _stored(devices_: list[str], conn: Connection) -> dict[str, Stored]:
    found: dict[str, Stored] = {}
    for start in range(0, len(devices_), 500):
        query = select(
            devices.c.id, devices.c.last_seen_at, devices.c.battery, devices.c.rssi,
            devices.c.firmware, devices.c.online, devices.c.heartbeat_interval_s,
        ).where(devices.c.id.in_(devices_[start : start + 500]))  # fmt: skip
        for row in conn.execute(query):
            found[row.id] = Stored(
                row.last_seen_at, row.battery, row.rssi, row.firmware, row.online,
                row.heartbeat_interval_s,
            )  # fmt: skip
    return found


def _changes(
    readings: dict[str, Reading], known: dict[str, Stored], low_battery: int
) -> list[tuple[str, str]]:
    """The supervision events these readings give rise to."""
    events: list[tuple[str, str]] = []
    for device, reading in readings.items():
        row = known[device]
        if reading.online and row.online is False:
            events.append((device, "online"))
        if not reading.online and row.online is not False:
            events.append((device, "offline"))
        if (
            reading.battery is not None
            and reading.battery < low_battery
            and (row.battery is None or row.battery >= low_battery)
        ):
            events.append((device, "low_battery"))
    return events


def _write(rows: list[dict[str, Any]], events: list[tuple[str, str]], conn: Connection) -> None:
    conn.execute(
        update(devices)
        .where(devices.c.id == bindparam("device"))
        .values(
            last_seen_at=bindparam("at"),
            battery=bindparam("battery"),
            rssi=bindparam("rssi"),
            firmware=bindparam("firmware"),
            online=bindparam("online"),
        ),
        rows,
    )
    _events(conn, events, utcnow())


def _values(device: str, stored: Stored) -> dict[str, Any]:
    return {
        "device": device, "at": stored.last_seen_at, "battery": stored.battery,
        "rssi": stored.rssi, "firmware": stored.firmware, "online": stored.online,
    }  # fmt: skip


async def mark_silent_offline(db: Database, now: datetime | None = None) -> list[str]:
    """Devices silent for longer than their heartbeat interval become offline, once.
    Looked for on a reader; only the silent ones are checked again and changed under
    the writer (which alarms share)."""
    now = now or utcnow()
    candidates = await db.run_read(partial(_silent, now, None))
    if not candidates:
        return []
    return await db.run_write(partial(_mark_silent, now, candidates))


def _silent(now: datetime, among: list[str] | None, conn: Connection) -> list[str]:
    query = select(
        devices.c.id, devices.c.last_seen_at, devices.c.created_at, devices.c.heartbeat_interval_s
    ).where(devices.c.online.is_not(False))
    if among is not None:
        query = query.where(devices.c.id.in_(among))
    return [
        row.id
        for row in conn.execute(query)
        if (row.last_seen_at or row.created_at) < now - timedelta(seconds=row.heartbeat_interval_s)
    ]


def _mark_silent(now: datetime, candidates: list[str], conn: Connection) -> list[str]:
    silent = _silent(now, candidates, conn)  # still silent, now that we write
    if silent:
        conn.execute(
            update(devices).where(devices.c.id == bindparam("device")).values(online=False),
            [{"device": d} for d in silent],
        )
        _events(conn, [(d, "offline") for d in silent], now, "silent")
    return silent


def _events(
    conn: Connection, events: list[tuple[str, str]], now: datetime, detail: str = ""
) -> None:
    if events:
        conn.execute(
            supervision_events.insert(),
            [{"device_id": d, "kind": k, "at": now, "detail": detail} for d, k in events],
        )


async def online_count(db: Database) -> int:
    return await db.run_read(_online_count)


def _online_count(conn: Connection) -> int:
    query = select(func.count()).select_from(devices).where(devices.c.online.is_(True))
    return int(conn.execute(query).scalar_one())
