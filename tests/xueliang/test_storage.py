"""Storage on SQLite and PostgreSQL: migrations, durability settings, constraints."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect, select, text
from sqlalchemy.exc import IntegrityError

from xueliang.errors import SchemaOutdated
from xueliang.storage import Database, ensure_schema, upgrade
from xueliang.storage.migrations_api import current_revision, downgrade, head_revision
from xueliang.storage.tables import counties, metadata, towns, villages


async def test_migrations_run_up_from_empty(db_url: str) -> None:
    """A new county installs with one command on either backend."""
    database = Database(db_url)
    try:
        assert await current_revision(database) is None
        await upgrade(database)
        assert await current_revision(database) == head_revision()
        async with database.read() as conn:
            names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert set(metadata.tables) <= names
    finally:
        await database.close()


async def test_migrations_match_the_tables(db: Database) -> None:
    """The code's schema and the migrated schema are the same (no forgotten migration)."""

    def diff(conn: Connection) -> list[object]:
        differences: list[object] = compare_metadata(MigrationContext.configure(conn), metadata)
        return differences

    async with db.read() as conn:
        assert await conn.run_sync(diff) == []


async def test_downgrade_and_upgrade_again(db: Database) -> None:
    await downgrade(db, "base")
    assert await current_revision(db) is None
    await upgrade(db)
    assert await current_revision(db) == head_revision()


async def test_concurrent_upgrades_do_not_collide(db_url: str) -> None:
    """Several processes starting together against one database all come up."""
    databases = [Database(db_url) for _ in range(3)]
    try:
        await asyncio.gather(*(upgrade(d) for d in databases))
        assert await current_revision(databases[0]) == head_revision()
    finally:
        for d in databases:
            await d.close()


async def test_refuses_old_schema_when_upgrades_are_manual(db_url: str) -> None:
    database = Database(db_url)
    try:
        with pytest.raises(SchemaOutdated, match="xueliang db upgrade"):
            await ensure_schema(database, auto_upgrade=False)
        await ensure_schema(database, auto_upgrade=True)
        await ensure_schema(database, auto_upgrade=False)
    finally:
        await database.close()


async def test_foreign_keys_are_enforced(db: Database) -> None:
    """A village cannot point at a town that does not exist, on SQLite too."""
    with pytest.raises(IntegrityError):
        async with db.transaction() as conn:
            await conn.execute(villages.insert().values(id="v", town_id="nowhere", name="V"))


async def test_rolled_back_transaction_leaves_nothing(db: Database) -> None:
    async def insert_then_fail() -> None:
        async with db.transaction() as conn:
            await conn.execute(counties.insert().values(id="c", name="C"))
            raise RuntimeError("abort")

    with pytest.raises(RuntimeError):
        await insert_then_fail()
    async with db.read() as conn:
        assert (await conn.execute(select(counties))).all() == []


async def test_timestamps_are_utc(db: Database) -> None:
    from xueliang.storage.tables import households

    async with db.transaction() as conn:
        await conn.execute(counties.insert().values(id="c", name="C"))
        await conn.execute(towns.insert().values(id="t", county_id="c", name="T"))
        await conn.execute(villages.insert().values(id="v", town_id="t", name="V"))
        local = datetime(2026, 11, 27, 20, 0, tzinfo=timezone(timedelta(hours=8)))
        await conn.execute(
            households.insert().values(id="h", village_id="v", name="H", created_at=local)
        )
    async with db.read() as conn:
        stored = (await conn.execute(select(households.c.created_at))).scalar_one()
    assert stored == local and stored.tzinfo == UTC
    with pytest.raises(Exception, match="naive datetime"):
        async with db.transaction() as conn:
            await conn.execute(households.update().values(created_at=datetime(2026, 1, 1)))


async def test_sqlite_is_durable(sqlite_url: str) -> None:
    """WAL with synchronous=FULL: a committed alarm survives a power cut."""
    database = Database(sqlite_url)
    try:
        async with database.read() as conn:
            mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar_one()
            sync = (await conn.execute(text("PRAGMA synchronous"))).scalar_one()
            fk = (await conn.execute(text("PRAGMA foreign_keys"))).scalar_one()
        assert (mode, sync, fk) == ("wal", 2, 1)
    finally:
        await database.close()


async def test_concurrent_writers_queue(db: Database) -> None:
    """Read-then-write transactions running at once neither deadlock nor lose updates."""
    async with db.transaction() as conn:
        await conn.execute(counties.insert().values(id="c", name="0"))

    async def bump() -> None:
        async with db.transaction() as conn:
            query = select(counties.c.name).with_for_update()
            value = int((await conn.execute(query)).scalar_one())
            await asyncio.sleep(0)
            await conn.execute(counties.update().values(name=str(value + 1)))

    await asyncio.gather(*(bump() for _ in range(20)))
    async with db.read() as conn:
        name = (await conn.execute(select(counties.c.name))).scalar_one()
    # SQLite: BEGIN IMMEDIATE serialises writers; PostgreSQL: the row lock does.
    assert name == "20"
