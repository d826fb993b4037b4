"""The database handle: one async engine, SQLite tuned for durability, or PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from xueliang.urls import redact_url

_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}

# WAL lets readers run beside the one writer; FULL fsyncs the WAL on every commit, so
# a committed alarm survives a power cut. busy_timeout makes writers queue, not fail.
_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=10000",
)


def async_url(url: str) -> URL:
    """Map a contract URL (sqlite:///…, postgresql://…) to its async driver."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend not in _DRIVERS:
        raise ValueError(f"unsupported database {redact_url(url)}")
    return parsed.set(drivername=_DRIVERS[backend])


class Database:
    """An async engine plus the two ways to use it: `read()` and `transaction()`."""

    def __init__(self, url: str) -> None:
        self.url = async_url(url)
        self.backend = self.url.get_backend_name()
        if self.backend == "sqlite":
            assert self.url.database
            Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)
        self.engine: AsyncEngine = create_async_engine(self.url, pool_pre_ping=True)
        if self.backend == "sqlite":
            _tune_sqlite(self.engine)

    def __repr__(self) -> str:
        return f"Database({self.url.render_as_string(hide_password=True)})"

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction, committed on exit; on SQLite it takes the write lock
        up front (BEGIN IMMEDIATE) so two writers queue instead of deadlocking."""
        async with self.engine.connect() as conn:
            await conn.execution_options(xl_write=True)
            async with conn.begin():
                yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads (its implicit transaction is rolled back on exit)."""
        async with self.engine.connect() as conn:
            yield conn

    async def ping(self) -> None:
        """Raise if the database cannot answer a trivial query."""
        async with self.read() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        await self.engine.dispose()


def _tune_sqlite(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (the driver's own is deferred and racy).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in _SQLITE_PRAGMAS:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        write = conn.get_execution_options().get("xl_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
