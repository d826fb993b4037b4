"""A small time-bounded cache for values that may be a few seconds stale (who a
pairing generation belongs to, a household's name) but are read on every page."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    def __init__(self, seconds: float, max_items: int = 10_000) -> None:
        self.seconds = seconds
        self.max_items = max_items
        self._items: dict[K, tuple[float, V]] = {}

    async def get(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        """The cached value, or `await load()` when absent or older than `seconds`."""
        now = time.monotonic()
        hit = self._items.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        value = await load()
        if len(self._items) >= self.max_items:
            self._items.clear()  # crude, but bounded: a flood of keys cannot grow it
        self._items[key] = (now + self.seconds, value)
        return value

    def forget(self, key: K) -> None:
        self._items.pop(key, None)
