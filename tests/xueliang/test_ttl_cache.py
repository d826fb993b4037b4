"""The time-bounded cache: how stale a value can be, one load for many waiters, and
no stale value stored by a load that a change overtook."""

from __future__ import annotations

import asyncio
from functools import partial
from types import SimpleNamespace

import pytest

import xueliang.ttl_cache
from xueliang.ttl_cache import MISSING, REFRESH_AFTER, TtlCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The cache's clock only (asyncio keeps the real one)."""
    fake = Clock()
    monkeypatch.setattr(xueliang.ttl_cache, "time", SimpleNamespace(monotonic=fake.monotonic))
    return fake


class Source:
    """A value that loads count, optionally held until released."""

    def __init__(self, value: str = "v1") -> None:
        self.value = value
        self.loads = 0
        self.release = asyncio.Event()
        self.release.set()
        self.reading = asyncio.Event()

    async def load(self) -> str:
        self.loads += 1
        seen = self.value  # what the database said when the read ran
        self.reading.set()
        await self.release.wait()
        return seen


async def test_a_value_is_kept_for_its_seconds_counted_from_the_read(clock: Clock) -> None:
    cache: TtlCache[str, str] = TtlCache(5.0)
    source = Source()
    source.release.clear()
    pending = asyncio.create_task(cache.get("k", source.load))
    await source.reading.wait()
    clock.now += 2.0  # the read took 2 s: the value is already 2 s old when it arrives
    source.release.set()
    assert await pending == "v1"
    source.value = "v2"
    clock.now += 2.9
    assert await cache.get("k", source.load) == "v1"
    clock.now += 0.2  # 5.1 s after the read started
    assert await cache.get("k", source.load) == "v2"
    assert source.loads == 2


async def test_concurrent_misses_share_one_load() -> None:
    cache: TtlCache[str, str] = TtlCache(5.0)
    source = Source()
    source.release.clear()
    waiters = [asyncio.create_task(cache.get("k", source.load)) for _ in range(50)]
    await source.reading.wait()
    source.release.set()
    assert await asyncio.gather(*waiters) == ["v1"] * 50
    assert source.loads == 1


@pytest.mark.parametrize("drop", ["clear", "forget"])
async def test_a_load_overtaken_by_a_change_is_not_stored(drop: str) -> None:
    """The read ran before the change; the change's `clear`/`forget` came before the
    read's answer: that answer serves the request that was waiting for it (it began
    before the change) but is not kept for later ones."""
    cache: TtlCache[str, str] = TtlCache(3600.0)
    source = Source()
    source.release.clear()
    early = asyncio.create_task(cache.get("k", source.load))
    await source.reading.wait()
    source.value = "v2"  # committed...
    if drop == "clear":  # ...and announced
        cache.clear()
    else:
        cache.forget("k")
    source.release.set()
    assert await early == "v1"
    assert await cache.get("k", source.load) == "v2"
    assert source.loads == 2


async def test_a_request_after_a_change_does_not_join_an_older_load() -> None:
    cache: TtlCache[str, str] = TtlCache(3600.0)
    source = Source()
    source.release.clear()
    early = asyncio.create_task(cache.get("k", source.load))
    await source.reading.wait()
    source.value = "v2"
    cache.clear()
    late = asyncio.create_task(cache.get("k", source.load))
    source.release.set()
    assert (await early, await late) == ("v1", "v2")
    assert source.loads == 2


async def test_failed_loads_reach_every_waiter_and_are_not_cached() -> None:
    cache: TtlCache[str, str] = TtlCache(3600.0)
    calls = 0

    async def failing() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        raise LookupError("gone")

    results = await asyncio.gather(
        *(cache.get("k", failing) for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, LookupError) for r in results) and calls == 1
    with pytest.raises(LookupError):
        await cache.get("k", failing)
    assert calls == 2 and len(cache) == 0


async def test_a_waiter_that_goes_away_does_not_cancel_the_others() -> None:
    cache: TtlCache[str, str] = TtlCache(3600.0)
    source = Source()
    source.release.clear()
    first = asyncio.create_task(cache.get("k", source.load))
    second = asyncio.create_task(cache.get("k", source.load))
    await source.reading.wait()
    first.cancel()
    source.release.set()
    assert await second == "v1"
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await cache.get("k", source.load) == "v1"
    assert source.loads == 1


async def test_the_number_of_keys_is_bounded() -> None:
    cache: TtlCache[int, int] = TtlCache(3600.0, max_items=10)

    async def load(n: int) -> int:
        return n

    for n in range(25):
        assert await cache.get(n, partial(load, n)) == n
        assert len(cache) <= 10


async def test_a_busy_key_is_reloaded_before_it_expires(clock: Clock) -> None:
    """Read in the last fifth of its time, a value is still served at once while its
    replacement loads; nobody waits at the expiry, and nothing is served past it."""
    cache: TtlCache[str, str] = TtlCache(5.0)
    source = Source()
    assert await cache.get("k", source.load) == "v1"
    source.value = "v2"
    source.release.clear()
    source.reading.clear()
    clock.now += 3.9
    assert await cache.get("k", source.load) == "v1"
    assert source.loads == 1  # not yet: 3.9 s of 5 s
    clock.now += 0.2
    assert await cache.get("k", source.load) == "v1"  # served at once...
    await source.reading.wait()  # ...while the reload runs
    assert await cache.get("k", source.load) == "v1"
    assert source.loads == 2  # one reload, however many readers
    source.release.set()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert await cache.get("k", source.load) == "v2"
    clock.now += 4.9  # 4.9 s after the reload started at 1004.1
    source.value = "v3"
    source.release.clear()
    source.reading.clear()
    waiting = asyncio.create_task(cache.get("k", source.load))  # starts the next reload
    await source.reading.wait()
    clock.now += 0.2  # past the reload's bound: the reader waits for the next one
    late = asyncio.create_task(cache.get("k", source.load))
    await asyncio.sleep(0)
    assert not late.done()
    source.release.set()
    assert (await waiting, await late) == ("v2", "v3")
    assert source.loads == 3


async def test_a_failed_background_reload_leaves_the_value_to_expire(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    cache: TtlCache[str, str] = TtlCache(5.0)
    assert await cache.get("k", Source().load) == "v1"

    async def failing() -> str:
        raise LookupError("database gone")

    clock.now += 4.5
    assert await cache.get("k", failing) == "v1"
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert "background reload failed" in caplog.text
    clock.now += 1.0
    with pytest.raises(LookupError):
        await cache.get("k", failing)


async def test_peek_answers_only_what_get_would_answer_without_loading(clock: Clock) -> None:
    """`peek` is `get` minus the load: the value while it is fresh, and nothing once
    `get` would start a reload (then `get` serves it and reloads in the background),
    once it is forgotten, or before it was ever loaded."""
    cache: TtlCache[str, str] = TtlCache(5.0)
    source = Source()
    assert cache.peek("k") is MISSING
    assert await cache.get("k", source.load) == "v1"
    assert cache.peek("k") == "v1"
    source.value = "v2"
    clock.now += 5.0 * REFRESH_AFTER - 0.01
    assert cache.peek("k") == "v1"
    clock.now += 0.02  # due for a refresh: only `get` may answer (and start it)
    assert cache.peek("k") is MISSING
    assert await cache.get("k", source.load) == "v1"
    await asyncio.sleep(0)  # the background reload
    assert cache.peek("k") == "v2"
    assert source.loads == 2
    cache.forget("k")
    assert cache.peek("k") is MISSING
