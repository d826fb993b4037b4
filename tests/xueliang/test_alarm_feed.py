"""The live feed behind the consoles' event streams: every change delivered once, in
order, resumable by event id, and a late commit on PostgreSQL not lost."""

from __future__ import annotations

import asyncio
import json
import time

from tests.xueliang.conftest import press, service
from xueliang.alarm_feed import AlarmFeed, Change, Signal
from xueliang.geography import Scope
from xueliang.storage import Database

COUNTY = Scope("county", "xinjin")


async def drain(queue: asyncio.Queue[Change | Signal]) -> list[Change]:
    found = []
    while not queue.empty():
        item = queue.get_nowait()
        assert isinstance(item, Change)
        found.append(item)
    return found


async def test_changes_reach_every_follower_once(homes: Database) -> None:
    alarms = service(homes)
    feed = AlarmFeed(homes, poll_s=60)
    alarms.listeners.append(feed.wake)
    runner = asyncio.create_task(feed.run())
    await feed.ready.wait()
    first, second = feed.subscribe(), feed.subscribe()
    [raised] = await alarms.raise_many([press("d1", "m1", "fire")])
    await alarms.act(raised.alarm, "acknowledge", by="值班员", source="test")
    await asyncio.sleep(0.3)
    got = await drain(first.queue)
    assert got == await drain(second.queue)
    states = [json.loads(c.data)["state"] for c in got]
    assert states[-1] == "acknowledged" and len({c.id for c in got}) == len(got)
    assert [c.id for c in got] == sorted(c.id for c in got)
    feed.close_all()
    assert first.lagging.is_set() and first.queue.get_nowait() == "end"
    runner.cancel()


async def test_resuming_gives_what_was_missed_in_scope_only(homes: Database) -> None:
    alarms = service(homes)
    feed = AlarmFeed(homes)
    [h1] = await alarms.raise_many([press("d1", "a")])
    [h3] = await alarms.raise_many([press("d3", "b")])  # another town
    seen = await feed.since(0, Scope("town", "puxing"))
    assert seen is not None and [c.alarm for c in seen] == [h1.alarm]
    await alarms.act(h1.alarm, "dispatch", by="x", source="test")
    later = await feed.since(seen[-1].id, Scope("town", "puxing"))
    assert later is not None
    assert [(c.alarm, json.loads(c.data)["changes"]) for c in later] == [(h1.alarm, ["dispatched"])]
    everything = await feed.since(0, COUNTY)
    assert everything is not None and {c.alarm for c in everything} == {h1.alarm, h3.alarm}
    assert await feed.since(0, COUNTY, limit=1) is None  # too much: reload instead


def test_a_late_commit_below_the_cursor_is_still_delivered() -> None:
    """PostgreSQL hands out ids before commit: 6 may become visible after 7. The feed
    waits for the gap, and gives up on it only after `gap_wait_s` (a rollback)."""
    feed = AlarmFeed(db=None, gap_wait_s=0.05)  # type: ignore[arg-type]
    feed.cursor = 5
    feed._advance([7, 8])
    assert feed.cursor == 5  # 6 is missing: not past it yet
    feed._advance([6])
    assert feed.cursor == 8
    feed._advance([10])
    assert feed.cursor == 8
    time.sleep(0.06)
    feed._advance([])
    assert feed.cursor == 10  # 9 never came: a rolled-back transaction


async def test_a_follower_that_falls_behind_is_told_to_reconnect(homes: Database) -> None:
    """A console that stops reading must not make the feed (and the process) hold an
    ever-growing queue: it is marked lagging, and catches up from the database later."""
    alarms = service(homes)
    feed = AlarmFeed(homes, poll_s=60)
    alarms.listeners.append(feed.wake)
    runner = asyncio.create_task(feed.run())
    await feed.ready.wait()
    slow, fast = feed.subscribe(), feed.subscribe()
    slow.queue = asyncio.Queue(2)
    for n, device in enumerate(("d1", "d2", "d3")):
        await alarms.raise_many([press(device, f"m{n}")])
        await asyncio.sleep(0.1)
    assert slow.lagging.is_set() and not fast.lagging.is_set()
    assert len(await drain(fast.queue)) == 3
    runner.cancel()
