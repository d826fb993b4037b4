"""The live feed of alarm changes that consoles follow (Server-Sent Events).

Every change of an alarm writes a row to `alarm_events` in the same transaction, so the
ids of that table are the feed's event ids: a console that reconnects with the last id
it saw gets everything after it from the database, and nothing is missed. One reader
per process turns new rows into ready-to-send JSON once and fans it out to every
subscriber; a wake-up (this process's commits, or the event bus for the others) makes
it read at once, a slow poll covers a lost wake-up.

On PostgreSQL, ids are taken before commit, so a row with a smaller id can become
visible after a larger one. The reader remembers such gaps for `gap_wait_s` and
delivers the late row when it appears.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

from sqlalchemy import Connection, func, select

from xueliang.alarm_board import in_scope
from xueliang.alarm_payloads import centre_payloads, to_json
from xueliang.geography import Scope
from xueliang.storage import Database
from xueliang.storage.tables import alarm_events, alarms

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Change:
    """An alarm's state after one or more events; `id` is the last of them."""

    id: int
    alarm: int
    village: str | None
    town: str | None
    data: str  # the centre payload plus "changes": the events' actions, as JSON
    frame: bytes  # the Server-Sent Event, encoded once for every follower

    def visible_to(self, scope: Scope) -> bool:
        return scope.covers(self.village, self.town)


# Besides changes, a follower's queue carries these: time to show it is alive (and to
# check its session), or the end (shutdown, or it fell too far behind).
Signal = Literal["keepalive", "end"]


@dataclass(eq=False)
class Subscription:
    """One follower's queue; a follower too slow to keep up is marked `lagging` and
    should reconnect (and catch up from the database by its last event id)."""

    queue: asyncio.Queue[Change | Signal] = field(default_factory=lambda: asyncio.Queue(1000))
    lagging: asyncio.Event = field(default_factory=asyncio.Event)


class AlarmFeed:
    def __init__(
        self, db: Database, *, poll_s: float = 5.0, gap_wait_s: float = 10.0, batch: int = 2000,
        keepalive_s: float = 15.0,
    ) -> None:  # fmt: skip
        self.db = db
        self.keepalive_s = keepalive_s
        self.poll_s = poll_s
        self.gap_wait_s = gap_wait_s
        self.batch = batch
        self.cursor = 0  # every event up to here has been delivered (or given up)
        self._above: set[int] = set()  # delivered ids above the cursor
        self._gaps: dict[int, float] = {}  # missing id → when first noticed
        self._subscribers: set[Subscription] = set()
        self._wake = asyncio.Event()
        self.ready = asyncio.Event()

    def wake(self) -> None:
        """Something changed: read now. Called on the event loop."""
        self._wake.set()

    def subscribe(self) -> Subscription:
        subscription = Subscription()
        self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)

    def close_all(self) -> None:
        """End every follower (shutdown)."""
        for subscription in self._subscribers:
            subscription.lagging.set()
            with contextlib.suppress(asyncio.QueueFull):
                subscription.queue.put_nowait("end")

    @property
    def followers(self) -> int:
        return len(self._subscribers)

    async def run(self) -> None:
        while not self.ready.is_set():
            try:
                self.cursor = await self.db.run_read(_last_id)
                self.ready.set()
            except Exception:  # the database is not reachable yet
                log.exception("cannot read the last alarm event; trying again")
                await asyncio.sleep(1.0)
        loop = asyncio.get_running_loop()
        kept_alive = loop.time()
        while True:
            wait = 0.5 if self._gaps else min(self.poll_s, self.keepalive_s)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()
            self._wake.clear()
            if loop.time() - kept_alive >= self.keepalive_s:
                self._fan_out("keepalive")
                kept_alive = loop.time()
            try:
                await self.read_new()
            except Exception:  # a database outage: followers wait, nothing is lost
                log.exception("reading alarm changes failed; trying again")
                await asyncio.sleep(1.0)

    async def read_new(self) -> None:
        """Deliver every event after the cursor that has not been delivered yet."""
        while True:
            rows, changes = await self.db.run_read(
                partial(_changes, after=self.cursor, limit=self.batch, skip=frozenset(self._above))
            )
            self._advance([row[0] for row in rows])
            for change in changes:
                self._fan_out(change)
            if len(rows) < self.batch:
                return

    async def since(self, last_id: int, scope: Scope, limit: int = 1000) -> list[Change] | None:
        """The changes in `scope` after event `last_id`, for a follower that reconnects;
        None when there are more than `limit` events (it should reload its list)."""
        return await self.db.run_read(partial(_since, last_id=last_id, scope=scope, limit=limit))

    def _fan_out(self, item: Change | Signal) -> None:
        for subscription in self._subscribers:
            if subscription.lagging.is_set():
                continue
            try:
                subscription.queue.put_nowait(item)
            except asyncio.QueueFull:
                log.warning("an event follower fell behind; it will reconnect and catch up")
                subscription.lagging.set()

    def _advance(self, fetched: Sequence[int]) -> None:
        now = time.monotonic()
        self._above.update(fetched)
        top = max(self._above, default=self.cursor)
        for missing in range(self.cursor + 1, top):
            if missing not in self._above:
                self._gaps.setdefault(missing, now)
        while True:
            following = self.cursor + 1
            if following in self._above:
                self._above.discard(following)
            elif following in self._gaps and now - self._gaps[following] >= self.gap_wait_s:
                del self._gaps[following]  # a transaction that rolled back
            else:
                break
            self._gaps.pop(following, None)
            self.cursor = following


def _last_id(conn: Connection) -> int:
    return int(conn.execute(select(func.coalesce(func.max(alarm_events.c.id), 0))).scalar_one())


def _changes(
    conn: Connection, *, after: int, limit: int, skip: frozenset[int]
) -> tuple[list[tuple[int, int, str]], list[Change]]:
    rows = [
        (r.id, r.alarm_id, r.action)
        for r in conn.execute(
            select(alarm_events.c.id, alarm_events.c.alarm_id, alarm_events.c.action)
            .where(alarm_events.c.id > after)
            .order_by(alarm_events.c.id)
            .limit(limit)
        )
        if r.id not in skip
    ]
    return rows, _as_changes(conn, rows)


def _since(conn: Connection, *, last_id: int, scope: Scope, limit: int) -> list[Change] | None:
    rows = [
        (r.id, r.alarm_id, r.action)
        for r in conn.execute(
            select(alarm_events.c.id, alarm_events.c.alarm_id, alarm_events.c.action)
            .join(alarms, alarms.c.id == alarm_events.c.alarm_id)
            .where(alarm_events.c.id > last_id, in_scope(scope))
            .order_by(alarm_events.c.id)
            .limit(limit + 1)
        )
    ]
    if len(rows) > limit:
        return None
    return _as_changes(conn, rows)


def _as_changes(conn: Connection, rows: list[tuple[int, int, str]]) -> list[Change]:
    """One change per alarm (its current state), ordered by its last event."""
    last: dict[int, int] = {}
    actions: dict[int, list[str]] = {}
    for event_id, alarm_id, action in rows:
        last[alarm_id] = event_id
        actions.setdefault(alarm_id, []).append(action)
    payloads = centre_payloads(conn, list(last))
    changes = []
    for alarm_id, event_id in sorted(last.items(), key=lambda item: item[1]):
        payload: dict[str, Any] = payloads[alarm_id]
        data = to_json({**payload, "changes": actions[alarm_id]})
        frame = f"id: {event_id}\nevent: alarm\ndata: {data}\n\n".encode()
        changes.append(Change(event_id, alarm_id, payload["village"], payload["town"], data, frame))
    return changes
