"""The database handle: one async engine, SQLite tuned for durability, or PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from xueliang.urls import redact_url

T = TypeVar("T")

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
        # A SQLite file cannot go away between two queries: no pre-ping round trip.
        self.engine: AsyncEngine = create_async_engine(
            self.url, pool_pre_ping=self.backend != "sqlite"
        )
        self._sync_engine: Engine | None = None
        self._writer: ThreadPoolExecutor | None = None
        self._readers: ThreadPoolExecutor | None = None
        # SQLite has one writer at a time. Writers of this process queue here, in
        # order, instead of polling SQLite's lock with growing back-off (which let a
        # busy alarm path starve the outbox for seconds). Other processes still wait
        # on busy_timeout.
        self._write_lock = asyncio.Lock() if self.backend == "sqlite" else None
        if self.backend == "sqlite":
            _tune_sqlite(self.engine.sync_engine)
            # The hot write paths (alarms) run whole transactions in one worker thread
            # on the plain sqlite3 driver: one thread hop per transaction instead of
            # three per statement through aiosqlite.
            self._sync_engine = create_engine(self.url.set(drivername="sqlite+pysqlite"))
            _tune_sqlite(self._sync_engine)
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="xl-sqlite-writer")
            # WAL lets readers run beside the writer: pages never wait for an alarm.
            self._readers = ThreadPoolExecutor(2, thread_name_prefix="xl-sqlite-reader")

    def __repr__(self) -> str:
        return f"Database({self.url.render_as_string(hide_password=True)})"

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction, committed on exit; on SQLite it takes the write lock
        up front (BEGIN IMMEDIATE) so two writers queue instead of deadlocking."""
        async with contextlib.AsyncExitStack() as stack:
            if self._write_lock is not None:
                await stack.enter_async_context(self._write_lock)
            conn = await stack.enter_async_context(self.engine.connect())
            await conn.execution_options(xl_write=True)
            async with conn.begin():
                yield conn

    async def run_write(self, work: Callable[[Connection], T]) -> T:
        """Run `work(connection)` as one write transaction, committed when it returns.
        `work` is plain synchronous SQLAlchemy code; on PostgreSQL it runs on the event
        loop through the async driver, on SQLite in the writer thread."""
        if self._writer is None:
            async with self.transaction() as conn:
                return await conn.run_sync(work)
        assert self._write_lock is not None
        async with self._write_lock:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._writer, self._write_in_thread, work)

    async def run_read(self, work: Callable[[Connection], T]) -> T:
        """Run `work(connection)` for reading; on SQLite in a reader thread, which
        costs one thread hop where aiosqlite costs several per statement."""
        if self._readers is None:
            async with self.read() as conn:
                return await conn.run_sync(work)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, self._in_thread, work, False)

    def _write_in_thread(self, work: Callable[[Connection], T]) -> T:
        return self._in_thread(work, True)

    def _in_thread(self, work: Callable[[Connection], T], write: bool) -> T:
        assert self._sync_engine is not None
        with self._sync_engine.connect() as conn:
            conn = conn.execution_options(xl_write=write)
            with conn.begin():
                return work(conn)

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
        for pool in (self._writer, self._readers):
            if pool is not None:
                pool.shutdown(wait=True)
        if self._sync_engine is not None:
            self._sync_engine.dispose()


def _tune_sqlite(sync_engine: Engine) -> None:
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
