"""County → towns → villages (→ grids): where every household, camera and account sits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Connection, Table, select, true
from sqlalchemy.ext.asyncio import AsyncConnection

from xueliang import validation
from xueliang.errors import NotFound
from xueliang.storage.tables import counties, grids, towns, villages
from xueliang.storage.upsert import insert_or_update

Level = Literal["village", "town", "county"]
# The county's clock: people read local time, whatever the server's zone.
LOCAL_TIME = ZoneInfo("Asia/Shanghai")


class LocalSpan:
    """`local_start` and `local_end` for frozen dataclasses with UTC `starts_at` and
    `ends_at` (slots, bookings, calendar lines): people read the county's clock."""

    __slots__ = ()
    starts_at: datetime
    ends_at: datetime

    @property
    def local_start(self) -> datetime:
        return self.starts_at.astimezone(LOCAL_TIME)

    @property
    def local_end(self) -> datetime:
        return self.ends_at.astimezone(LOCAL_TIME)


@dataclass(frozen=True, slots=True)
class Village:
    id: str
    name: str
    town: str
    county: str


async def put_county(conn: AsyncConnection, id: str, name: str) -> None:
    """Create the county, or rename it if it exists."""
    values = {"name": validation.text("name", name, max_length=100)}
    await insert_or_update(conn, counties, {"id": validation.identifier("id", id)}, values)


async def put_town(conn: AsyncConnection, id: str, name: str, county: str) -> None:
    await _require(conn, counties, "county", county)
    values = {"name": validation.text("name", name, max_length=100), "county_id": county}
    await insert_or_update(conn, towns, {"id": validation.identifier("id", id)}, values)


async def put_village(conn: AsyncConnection, id: str, name: str, town: str) -> None:
    await _require(conn, towns, "town", town)
    values = {"name": validation.text("name", name, max_length=100), "town_id": town}
    await insert_or_update(conn, villages, {"id": validation.identifier("id", id)}, values)


async def put_grid(
    conn: AsyncConnection, id: str, name: str, village: str, worker: str | None = None
) -> None:
    await _require(conn, villages, "village", village)
    values = {
        "name": validation.text("name", name, max_length=100),
        "village_id": village,
        "worker_name": worker and validation.text("worker", worker, max_length=100),
    }
    await insert_or_update(conn, grids, {"id": validation.identifier("id", id)}, values)


async def get_village(conn: AsyncConnection, id: str) -> Village:
    row = (
        await conn.execute(
            select(villages.c.id, villages.c.name, villages.c.town_id, towns.c.county_id)
            .join(towns, towns.c.id == villages.c.town_id)
            .where(villages.c.id == id)
        )
    ).one_or_none()
    if row is None:
        raise NotFound("village", id)
    return Village(id=row.id, name=row.name, town=row.town_id, county=row.county_id)


async def scope_exists(conn: AsyncConnection, level: Level, id: str) -> bool:
    """True when `id` names a place of `level` (a staff account's scope)."""
    return await _exists(conn, {"village": villages, "town": towns, "county": counties}[level], id)


async def _exists(conn: AsyncConnection, table: Table, id: str) -> bool:
    return (await conn.execute(select(table.c.id).where(table.c.id == id))).first() is not None


async def _require(conn: AsyncConnection, table: Table, kind: str, id: str) -> None:
    if not await _exists(conn, table, id):
        raise NotFound(kind, id)


@dataclass(frozen=True, slots=True)
class Scope:
    """What a staff account or a centre system may see and act on."""

    level: Level
    id: str

    def covers(self, village: str | None, town: str | None) -> bool:
        """True for a place inside this scope; unplaced things (an unregistered
        device's alarm) belong to the county alone."""
        if self.level == "county":
            return True
        if self.level == "town":
            return town is not None and town == self.id
        return village is not None and village == self.id


def villages_in(scope: Scope) -> ColumnElement[bool]:
    """The SQL condition for rows of `villages` inside `scope`."""
    if scope.level == "town":
        return villages.c.town_id == scope.id
    if scope.level == "village":
        return villages.c.id == scope.id
    return true()


def village_names(conn: Connection, scope: Scope) -> dict[str, str]:
    """Id → name of every village in `scope` (for lists that show names)."""
    query = select(villages.c.id, villages.c.name).where(villages_in(scope))
    return {row.id: row.name for row in conn.execute(query)}
