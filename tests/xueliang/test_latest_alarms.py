"""Each household's latest alarm in memory: fresh after every change made through the
service of this process, at most the TTL late for changes made by other processes,
and never stale because a read was overtaken by a commit."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.xueliang.conftest import press, service
from xueliang.alarms import AlarmService, LatestHouseholdAlarms, RaiseRequest, _Latest
from xueliang.storage import Database


def counting_reads(monkeypatch: pytest.MonkeyPatch, alarms: AlarmService) -> list[str]:
    """The households the view read from the database (reads run in worker threads)."""
    reads: list[str] = []
    original = alarms._latest_household_row

    def counted(conn: Any, *, household: str) -> _Latest | None:
        reads.append(household)
        return original(conn, household=household)

    monkeypatch.setattr(alarms, "_latest_household_row", counted)
    return reads


async def test_changes_made_here_are_seen_at_once(
    homes: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The TTL is an hour: only the service's listener can make these fresh."""
    alarms = service(homes)
    latest = LatestHouseholdAlarms(alarms, ttl_s=3600)
    reads = counting_reads(monkeypatch, alarms)
    assert await latest.get("h1") is None
    assert await latest.get("h1") is None
    assert reads == ["h1"]  # the second page cost no query
    [raised] = await alarms.raise_many([press("d1", "m1")])
    shown = await latest.get("h1")
    assert shown is not None and (shown.id, shown.state, shown.open) == (
        raised.alarm, "received", True
    )  # fmt: skip
    await alarms.raise_many([press("d1b", "m2")])  # a second press joins it
    shown = await latest.get("h1")
    assert shown is not None and shown.presses == 2
    for action, state in (("acknowledge", "acknowledged"), ("resolve", "resolved")):
        await alarms.act(raised.alarm, action, by="duty", source="console")  # type: ignore[arg-type]
        shown = await latest.get("h1")
        assert shown is not None and shown.state == state
    assert shown.open is False
    assert await latest.get("h2") is None  # other households are unaffected


async def test_changes_made_elsewhere_are_seen_within_the_ttl(homes: Database) -> None:
    mine, elsewhere = service(homes), service(homes)  # another process: no shared listener
    latest = LatestHouseholdAlarms(mine, ttl_s=0.3)
    assert await latest.get("h1") is None
    [raised] = await elsewhere.raise_many([press("d1", "m1")])
    await asyncio.sleep(0.35)
    shown = await latest.get("h1")
    assert shown is not None and shown.id == raised.alarm


async def test_the_event_bus_can_make_changes_elsewhere_fresh_at_once(homes: Database) -> None:
    mine, elsewhere = service(homes), service(homes)
    latest = LatestHouseholdAlarms(mine, ttl_s=3600)
    assert await latest.get("h1") is None
    await elsewhere.raise_many([press("d1", "m1")])
    assert await latest.get("h1") is None  # cached: the bound is the TTL...
    latest.invalidate()  # ...unless the bus tells this process (the portal subscribes it)
    assert await latest.get("h1") is not None


async def test_a_read_overtaken_by_a_commit_is_not_kept(
    homes: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page's read that ran before the press but answered after it: that page may
    show the old state (it was asked for before the press), the next one may not."""
    alarms = service(homes)
    latest = LatestHouseholdAlarms(alarms, ttl_s=3600)
    read, release = asyncio.Event(), asyncio.Event()
    original = latest._read

    async def slow_read(household: str) -> _Latest | None:
        found = await original(household)  # reads before the press
        read.set()
        await release.wait()  # answers after it
        return found

    monkeypatch.setattr(latest, "_read", slow_read)
    early = asyncio.create_task(latest.get("h1"))
    await read.wait()
    [raised] = await alarms.raise_many([press("d1", "m1")])
    release.set()
    assert await early is None
    monkeypatch.setattr(latest, "_read", original)
    shown = await latest.get("h1")
    assert shown is not None and shown.id == raised.alarm


async def test_concurrent_pages_share_one_read(
    homes: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    alarms = service(homes)
    latest = LatestHouseholdAlarms(alarms, ttl_s=3600)
    reads = counting_reads(monkeypatch, alarms)
    await alarms.raise_many([press("d1", "m1")])
    shown = await asyncio.gather(*(latest.get("h1") for _ in range(30)))
    assert len({a.id for a in shown if a is not None}) == 1 and len(shown) == 30
    assert reads == ["h1"]


async def test_cancellable_ends_on_time_without_a_new_read(
    homes: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    alarms = service(homes, cancel_grace_s=0.3)
    latest = LatestHouseholdAlarms(alarms, ttl_s=3600)
    request = RaiseRequest("tv", "panic", household="h1", message_id="nonce-1234")
    [raised] = await alarms.raise_many([request])
    reads = counting_reads(monkeypatch, alarms)
    shown = await latest.get("h1")
    assert shown is not None and shown.cancellable
    await asyncio.sleep(0.35)
    shown = await latest.get("h1")
    assert shown is not None and shown.id == raised.alarm and not shown.cancellable
    assert shown.open and reads == ["h1"]
