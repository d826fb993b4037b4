"""Device liveness: heartbeats and online/offline status, written in batches, and the
supervision events (offline, back online, low battery) they give rise to. These never
enter the alarm queue."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
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


async def record(db: Database, readings: Mapping[str, Reading], low_battery: int) -> Recorded:
    """Write many devices' readings in one transaction (never one write per heartbeat)."""
    if not readings:
        return Recorded(0, [], [])
    return await db.run_write(partial(_record, dict(readings), low_battery))


def _record(readings: dict[str, Reading], low_battery: int, conn: Connection) -> Recorded:
    stored = {
        row.id: row
        for start in range(0, len(readings), 500)
        for row in conn.execute(
            select(devices).where(devices.c.id.in_(sorted(readings)[start : start + 500]))
        )
    }
    unknown = sorted(set(readings) - set(stored))
    known = {d: r for d, r in readings.items() if d in stored}
    events: list[tuple[str, str]] = []
    for device, reading in known.items():
        row = stored[device]
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
    if known:
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
            [_values(device, reading, stored[device]) for device, reading in known.items()],
        )
    _events(conn, events, utcnow())
    return Recorded(len(known), unknown, events)


def _values(device: str, reading: Reading, row: Any) -> dict[str, Any]:
    return {
        "device": device,
        "at": reading.at,
        "battery": reading.battery if reading.battery is not None else row.battery,
        "rssi": reading.rssi if reading.rssi is not None else row.rssi,
        "firmware": reading.firmware if reading.firmware is not None else row.firmware,
        "online": reading.online,
    }


async def mark_silent_offline(db: Database, now: datetime | None = None) -> list[str]:
    """Devices silent for longer than their heartbeat interval become offline, once."""
    return await db.run_write(partial(_mark_silent, now or utcnow()))


def _mark_silent(now: datetime, conn: Connection) -> list[str]:
    rows = conn.execute(
        select(
            devices.c.id,
            devices.c.last_seen_at,
            devices.c.created_at,
            devices.c.heartbeat_interval_s,
        ).where(devices.c.online.is_not(False))
    )
    silent = [
        row.id
        for row in rows
        if (row.last_seen_at or row.created_at) < now - timedelta(seconds=row.heartbeat_interval_s)
    ]
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
