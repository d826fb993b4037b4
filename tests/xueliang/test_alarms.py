"""The alarm lifecycle on both backends: stored once, presses joined, every change
announced through the outbox, actions checked against scope and state."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.xueliang.conftest import press, service
from xueliang.alarms import AlarmService, RaiseRequest
from xueliang.errors import InvalidTransition, NotFound
from xueliang.geography import Scope
from xueliang.storage import Database
from xueliang.storage.tables import alarm_events, alarm_messages, alarms, outbox
from xueliang.storage.types import utcnow
from xueliang.topics import Topics


async def published(db: Database) -> list[tuple[str, str, dict[str, object]]]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(outbox.c.destination, outbox.c.topic, outbox.c.payload).order_by(outbox.c.id)
        )
        return [(r.destination, r.topic, json.loads(r.payload)) for r in rows]


async def test_resends_are_stored_once_and_presses_join(homes: Database) -> None:
    """A button resends until it hears `received`; a household pressing twice has one
    alarm with two presses, not two alarms."""
    alarms_ = service(homes)
    first = await alarms_.raise_many(
        [press("d1", "m1"), press("d1", "m1"), press("d1b", "x9"), press("d2", "m1")]
    )
    assert [r.outcome for r in first] == ["new", "duplicate", "joined", "new"]
    assert first[0].alarm == first[1].alarm == first[2].alarm != first[3].alarm
    again = await alarms_.raise_many([press("d1", "m1"), press("d1", "m2")])
    assert [(r.alarm, r.outcome) for r in again] == [(first[0].alarm, "duplicate")] * 1 + [
        (first[0].alarm, "joined")
    ]
    payload = await alarms_.payload(first[0].alarm)
    assert payload["presses"] == 3
    assert payload["state"] == "received" and payload["level"] == "town"
    assert payload["household"] == {"id": "h1", "name": "h1家", "address": "", "phone": ""}
    assert (payload["village"], payload["town"]) == ("qilong", "puxing")
    async with homes.read() as conn:
        stored = (await conn.execute(select(func.count()).select_from(alarm_messages))).scalar()
    assert stored == 4  # m1, x9 and m2 of h1's buttons, m1 of d2


async def test_every_change_goes_to_the_town_centre(homes: Database) -> None:
    alarms_ = service(homes, upstream_towns=frozenset({"puxing"}))
    [raised] = await alarms_.raise_many([press("d1", "m1")])
    sent = await published(homes)
    assert [(d, t) for d, t, _ in sent] == [
        ("local", "xl/centre/puxing/alarm"),
        ("puxing", "xl/centre/puxing/alarm"),  # the town's own broker too
    ]
    await alarms_.act(raised.alarm, "acknowledge", by="duty", source="console")
    sent = await published(homes)
    states = [(t, p.get("state")) for _, t, p in sent[2:]]
    assert ("xl/centre/puxing/alarm", "acknowledged") in states
    assert ("xl/dev/d1/ack", "acknowledged") in states
    ack = next(p for _, t, p in sent if t == "xl/dev/d1/ack")
    assert ack == {"id": "m1", "alarm": raised.alarm, "state": "acknowledged"}


async def test_tv_alarms_use_the_same_path(homes: Database) -> None:
    """One code path for every source: the TV's alarm joins the button's."""
    alarms_ = service(homes)
    [button] = await alarms_.raise_many([press("d3", "m1")])
    tv = RaiseRequest("tv", "medical", household="h3", message_id="form-nonce-1")
    [joined] = await alarms_.raise_many([tv])
    [again] = await alarms_.raise_many([tv])  # the same form posted twice
    assert (joined.alarm, joined.outcome) == (button.alarm, "joined")
    assert again.outcome == "duplicate"
    [alone] = await alarms_.raise_many([RaiseRequest("tv", "fire", household="h2")])
    payload = await alarms_.payload(alone.alarm)
    assert (payload["source"], payload["kind"], payload["device"]) == ("tv", "fire", None)
    with pytest.raises(NotFound):
        await alarms_.raise_many([RaiseRequest("tv", "panic", household="nobody")])


async def test_unregistered_device_reaches_the_county(homes: Database) -> None:
    """An alarm is never dropped for paperwork: shown to the county, flagged."""
    alarms_ = service(homes)
    [raised] = await alarms_.raise_many([press("ghost-7", "m1"), press("ghost-7", "m2")][:1])
    payload = await alarms_.payload(raised.alarm)
    assert payload["unregistered"] is True
    assert (payload["level"], payload["household"], payload["town"]) == ("county", None, None)
    assert payload["escalate_at"] is None
    [(_, topic, _)] = await published(homes)
    assert topic == "xl/centre/xinjin/alarm"
    [more] = await alarms_.raise_many([press("ghost-7", "m2")])
    assert (more.alarm, more.outcome) == (raised.alarm, "joined")


async def test_lifecycle_and_idempotent_actions(homes: Database) -> None:
    alarms_ = service(homes)
    [raised] = await alarms_.raise_many([press("d1", "m1")])
    a = raised.alarm
    assert await alarms_.act(a, "acknowledge", by="duty", source="console") == "acknowledged"
    # QoS 1 redelivers commands: the same action again changes nothing.
    assert await alarms_.act(a, "acknowledge", by="duty", source="console") == "acknowledged"
    assert await alarms_.act(a, "dispatch", by="duty", source="console") == "dispatched"
    assert await alarms_.act(a, "acknowledge", by="other", source="console") == "dispatched"
    assert (
        await alarms_.act(a, "resolve", by="duty", source="console", note="家人摔倒") == "resolved"
    )
    with pytest.raises(InvalidTransition):
        await alarms_.act(a, "false_alarm", by="duty", source="console")
    async with homes.read() as conn:
        history = list(
            (
                await conn.execute(
                    select(alarm_events.c.action).where(alarm_events.c.alarm_id == a)
                    .order_by(alarm_events.c.id)
                )
            ).scalars()
        )  # fmt: skip
        row = (await conn.execute(select(alarms).where(alarms.c.id == a))).one()
    assert history == ["raised", "acknowledged", "dispatched", "resolved"]
    assert (row.acknowledged_by, row.dispatched_by, row.closed_by) == ("duty", "duty", "duty")
    # After it closed, a new press opens a new alarm.
    [fresh] = await alarms_.raise_many([press("d1", "m9")])
    assert fresh.outcome == "new" and fresh.alarm != a


async def test_dispatch_after_acknowledge_keeps_acknowledge_state_sane(homes: Database) -> None:
    alarms_ = service(homes)
    [raised] = await alarms_.raise_many([press("d2", "m1")])
    assert await alarms_.act(raised.alarm, "dispatch", by="t", source="c") == "dispatched"
    # Acknowledging a dispatched alarm must not move it backwards.
    await alarms_.act(raised.alarm, "acknowledge", by="t", source="c")
    assert (await alarms_.payload(raised.alarm))["state"] == "dispatched"


async def test_scope_hides_other_towns_alarms(homes: Database) -> None:
    """A town (or its system) cannot see or act on another town's alarm: it does not
    exist for them."""
    alarms_ = service(homes)
    [raised] = await alarms_.raise_many([press("d1", "m1")])  # town puxing
    with pytest.raises(NotFound):
        await alarms_.act(
            raised.alarm, "acknowledge", by="x", source="c", scope=Scope("town", "anxi")
        )
    with pytest.raises(NotFound):
        await alarms_.act(
            raised.alarm, "resolve", by="x", source="c", scope=Scope("village", "anxicun")
        )
    await alarms_.act(
        raised.alarm, "acknowledge", by="x", source="c", scope=Scope("village", "qilong")
    )
    await alarms_.act(raised.alarm, "dispatch", by="x", source="c", scope=Scope("county", "xinjin"))
    with pytest.raises(NotFound):
        await alarms_.act(999_999, "acknowledge", by="x", source="c")


async def test_household_cancels_only_its_own_within_grace(homes: Database) -> None:
    alarms_ = service(homes, cancel_grace_s=60)
    [mine, theirs] = await alarms_.raise_many([press("d1", "m1"), press("d2", "m1")])
    with pytest.raises(NotFound):
        await alarms_.act(theirs.alarm, "cancel", by="h1", source="tv", household="h1")
    assert (
        await alarms_.act(mine.alarm, "cancel", by="h1", source="tv", household="h1") == "cancelled"
    )
    late = service(homes, cancel_grace_s=0)
    await asyncio.sleep(0.01)
    with pytest.raises(InvalidTransition, match="no longer be cancelled"):
        await late.act(theirs.alarm, "cancel", by="h2", source="tv", household="h2")


async def test_escalation_uses_stored_deadlines(homes: Database) -> None:
    """Deadlines live in the database: whoever runs the clock next escalates once."""
    fast = service(homes, town_s=1.0)
    [waiting, handled] = await fast.raise_many([press("d1", "m1"), press("d3", "m1")])
    await fast.act(handled.alarm, "acknowledge", by="x", source="c")
    deadline = await fast.next_deadline()
    assert deadline is not None and deadline <= utcnow() + timedelta(seconds=1)
    assert await fast.escalate_overdue() == []
    await asyncio.sleep(max(0.0, (deadline - utcnow()).total_seconds()) + 0.05)
    other_process = service(homes, town_s=1.0)
    assert await other_process.escalate_overdue() == [waiting.alarm]
    assert await fast.escalate_overdue() == []
    payload = await fast.payload(waiting.alarm)
    assert (payload["level"], payload["escalate_at"]) == ("county", None)
    assert (await fast.payload(handled.alarm))["level"] == "town"
    assert await fast.next_deadline() is None


async def test_concurrent_raisers_share_one_alarm(homes: Database) -> None:
    """Two processes (bridge and portal) pressing for one household at once still
    give one open alarm: the database's unique index decides."""
    first, second = service(homes), service(homes)
    results = await asyncio.gather(
        *(s.raise_many([press("d1" if i % 2 else "d1b", f"c{i}")]) for i, s in
          enumerate([first, second] * 5))
    )  # fmt: skip
    ids = {r[0].alarm for r in results}
    assert len(ids) == 1
    assert (await first.payload(ids.pop()))["presses"] == 10


def test_listeners_hear_every_commit() -> None:
    calls: list[str] = []
    s = AlarmService(Database("sqlite:////tmp/unused.db"), Topics())
    s.listeners.append(lambda: calls.append("x"))
    s._changed()
    assert calls == ["x"]
