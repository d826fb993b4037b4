"""A small time-bounded cache for values that may be a few seconds stale (who a
pairing generation belongs to, a household's name) but are read on every page.

Staleness is bounded by `seconds` counted from the moment the value's load *started*:
anything committed before a load starts is in what it reads, so a change made
anywhere is seen at most `seconds` later. Nothing is ever served past that bound.

Concurrent misses of one key share one load (a hundred boxes asking at the moment an
entry expires cost one database read, not a hundred), and a key still asked for near
the end of its time is reloaded in the background while the current value is served,
so a busy key does not make its readers wait at every expiry. `forget` and `clear`
also disown loads already running, so a read that may predate the change is never
stored."""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

# Past this share of its time, a value that is read starts its replacement's load.
REFRESH_AFTER = 0.8


class Missing(enum.Enum):
    """What `peek` returns when only `get` can answer."""

    MISSING = enum.auto()


MISSING = Missing.MISSING


class TtlCache(Generic[K, V]):
    def __init__(self, seconds: float, max_items: int = 10_000) -> None:
        self.seconds = seconds
        self.max_items = max_items
        self._items: dict[K, tuple[float, float, V]] = {}  # expires, refresh from, value
        self._loading: dict[K, asyncio.Task[V]] = {}

    async def get(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        """The cached value, or `await load()` when absent or older than `seconds`."""
        hit = self._items.get(key)
        if hit is not None:
            now = time.monotonic()
            if now < hit[0]:
                if now >= hit[1] and key not in self._loading:
                    self._start(key, load).add_done_callback(_quiet)
                return hit[2]
        pending = self._loading.get(key) or self._start(key, load)
        # A waiter that goes away (a closed connection) must not cancel the others' load.
        return await asyncio.shield(pending)

    def peek(self, key: K) -> V | Missing:
        """The cached value when `get` would return it without loading anything, not
        even in the background; `MISSING` otherwise. For pages asked for on every
        visit: no coroutine, no loader built, when the value is simply there."""
        hit = self._items.get(key)
        if hit is not None and time.monotonic() < hit[1]:
            return hit[2]
        return MISSING

    def _start(self, key: K, load: Callable[[], Awaitable[V]]) -> asyncio.Task[V]:
        task = asyncio.ensure_future(self._fill(key, load))
        self._loading[key] = task
        task.add_done_callback(lambda done: self._settled(key, done))
        return task

    async def _fill(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        started = time.monotonic()
        value = await load()
        if self._loading.get(key) is asyncio.current_task():  # not forgotten meanwhile
            if len(self._items) >= self.max_items and key not in self._items:
                self._items.clear()  # crude, but bounded: a flood of keys cannot grow it
            ttl = self.seconds
            self._items[key] = (started + ttl, started + ttl * REFRESH_AFTER, value)
        return value

    def _settled(self, key: K, done: asyncio.Task[V]) -> None:
        if self._loading.get(key) is done:
            del self._loading[key]

    def forget(self, key: K) -> None:
        """Drop `key`: the next `get` loads it again, and a load already running for
        it (which may have read before the change) is not stored."""
        self._items.pop(key, None)
        self._loading.pop(key, None)

    def clear(self) -> None:
        """Drop everything, including what loads already running would store."""
        self._items.clear()
        self._loading.clear()

    def __len__(self) -> int:
        return len(self._items)


def _quiet(task: asyncio.Task[object]) -> None:
    """A background reload nobody waits for: a failure is logged, and the value it
    would have replaced simply expires (the next reader loads it and sees the error)."""
    if not task.cancelled() and (error := task.exception()) is not None:
        log.warning("background reload failed: %r", error)
