"""The bridge against a real Mosquitto: every alarm stored, answered, forwarded,
acted on and escalated, whatever else arrives."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import select, update

from tests.mosquitto import Mosquitto
from tests.mqtt_bridge.conftest import StartBridge
from tests.mqtt_bridge.peers import Peer, Received, centre_state, on_topic
from xueliang.storage.tables import alarm_messages, alarms, devices, supervision_events

DEVICES = ["btn-qilong-001", "btn-qilong-002", "btn-anxicun-001", "btn-fenghuo-001"]


@pytest.fixture
def watcher(mosquitto: Mosquitto) -> Iterator[Peer]:
    """Sees every acknowledgement and every centre message."""
    peer = Peer(mosquitto.port, "watcher", subscribe=("xl/dev/+/ack", "xl/centre/+/alarm"))
    yield peer
    peer.close()


@pytest.fixture
def button(mosquitto: Mosquitto) -> Iterator[Peer]:
    peer = Peer(mosquitto.port, "buttons")
    yield peer
    peer.close()


def acked(device: str, message_id: str) -> object:
    def match(m: Received) -> bool:
        return m.topic == f"xl/dev/{device}/ack" and m.json["id"] == message_id

    return match


async def test_alarm_is_stored_acknowledged_and_forwarded(
    start_bridge: StartBridge, watcher: Peer, button: Peer
) -> None:
    """The whole path of one press: stored before the device hears `received`, then
    on its town centre's topic with the household's details."""
    run = await start_bridge()
    button.publish("xl/dev/btn-qilong-001/alarm", {"id": "m-1", "kind": "fire", "battery": 77})
    [ack] = await watcher.wait_for(acked("btn-qilong-001", "m-1"))  # type: ignore[arg-type]
    alarm_id = ack.json["alarm"]
    assert ack.json == {"id": "m-1", "alarm": alarm_id, "state": "received"}
    async with run.db.read() as conn:
        row = (await conn.execute(select(alarms).where(alarms.c.id == alarm_id))).one()
    assert (row.kind, row.state, row.device_id, row.household_id) == (
        "fire", "received", "btn-qilong-001", "qilong-001"
    )  # fmt: skip
    [centre] = await watcher.wait_for(centre_state(alarm_id))
    assert centre.topic == "xl/centre/puxing/alarm"
    body = centre.json
    assert body["household"]["name"] == "王德明家" and body["cameras"] == ["qilong-square"]
    assert (body["source"], body["level"], body["priority"]) == ("button", "town", 1)
    assert run.metric("xl_alarm_ingest_seconds_count") == 1


async def test_centre_command_reaches_the_device(
    start_bridge: StartBridge, watcher: Peer, button: Peer
) -> None:
    """A town centre's own system acts with the same service as the console, and the
    button learns each change (its LED shows someone is coming)."""
    run = await start_bridge()
    button.publish("xl/dev/btn-anxicun-001/alarm", {"id": "a1", "kind": "medical"})
    [ack] = await watcher.wait_for(acked("btn-anxicun-001", "a1"))  # type: ignore[arg-type]
    alarm_id = ack.json["alarm"]
    command = {"alarm": alarm_id, "action": "dispatch", "by": "安西镇值班员", "note": "已派人"}
    button.publish("xl/centre/puxing/command", command)  # not puxing's alarm: refused
    button.publish("xl/centre/anxi/command", command)
    await watcher.wait_for(centre_state(alarm_id, state="dispatched"))
    [led] = await watcher.wait_for(
        lambda m: m.topic == "xl/dev/btn-anxicun-001/ack" and m.json["state"] == "dispatched"
    )
    assert led.json == {"id": "a1", "alarm": alarm_id, "state": "dispatched"}
    assert run.metric("xl_bridge_rejected_total", reason="unknown_alarm") == 1
    button.publish("xl/centre/xinjin/command", {**command, "action": "resolve"})  # the county
    await watcher.wait_for(centre_state(alarm_id, state="resolved"))
    button.publish("xl/centre/anxi/command", {**command, "action": "false_alarm"})
    await _until(lambda: run.metric("xl_bridge_rejected_total", reason="invalid_transition") == 1)


async def test_unregistered_device_still_reaches_the_county(
    start_bridge: StartBridge, watcher: Peer, button: Peer
) -> None:
    await start_bridge()
    button.publish("xl/dev/not-provisioned/alarm", {"id": "u1", "kind": "panic"})
    [ack] = await watcher.wait_for(acked("not-provisioned", "u1"))  # type: ignore[arg-type]
    [centre] = await watcher.wait_for(centre_state(ack.json["alarm"]))
    assert centre.topic == "xl/centre/xinjin/alarm"
    assert (centre.json["unregistered"], centre.json["level"]) == (True, "county")


async def test_hostile_traffic_loses_no_valid_alarm(
    start_bridge: StartBridge, watcher: Peer, button: Peer
) -> None:
    """Thousands of malformed payloads and topics, interleaved with real alarms: the
    bridge keeps running and every real alarm is stored and answered."""
    run = await start_bridge(bridge={"flood_burst": 1000, "flood_per_minute": 6000})
    rng = random.Random(20261127)
    valid: list[tuple[str, str]] = []
    for i in range(3000):
        if i % 60 == 0:
            device = DEVICES[len(valid) % len(DEVICES)]
            message_id = f"v-{i}"
            valid.append((device, message_id))
            button.publish(f"xl/dev/{device}/alarm", {"id": message_id, "kind": "panic"})
        button.publish(_hostile_topic(rng), _hostile_payload(rng), qos=rng.choice((0, 1)))
    for device, message_id in valid:
        await watcher.wait_for(acked(device, message_id), timeout=30)  # type: ignore[arg-type]
    async with run.db.read() as conn:
        query = select(alarm_messages.c.device_id, alarm_messages.c.message_id)
        stored = {(r[0], r[1]) for r in await conn.execute(query)}
    assert set(valid) <= stored
    assert not run.task.done()
    rejected = sum(
        run.metric("xl_bridge_rejected_total", reason=r)
        for r in ("not_json", "not_object", "invalid", "oversized", "bad_topic")
    )
    assert rejected > 500


def _hostile_topic(rng: random.Random) -> str:
    device = rng.choice([*DEVICES, "ghost", "a.b", "x" * 64])
    return rng.choice(
        [
            f"xl/dev/{device}/alarm",
            f"xl/dev/{device}/heartbeat",
            f"xl/dev/{device}/status",
            f"xl/centre/{rng.choice(['puxing', 'anxi', 'nowhere', 'x' * 65])}/command",
            f"xl/dev/{device}/alarm/extra",
            f"xl/{rng.randbytes(4).hex()}/alarm",
            "xl/dev/{}/alarm".format("".join(rng.choice("ab.-_ 设") for _ in range(8))),
        ]
    )


def _hostile_payload(rng: random.Random) -> bytes:
    choices: list[Callable[[], bytes]] = [
        lambda: rng.randbytes(rng.randint(0, 64)),
        lambda: json.dumps({"id": rng.randint(0, 9), "kind": "panic"}).encode(),
        lambda: json.dumps({"id": "x", "kind": rng.choice(["fire", "🔥", None, 1])}).encode(),
        lambda: json.dumps(
            {"alarm": rng.randint(-5, 10**12), "action": "resolve", "by": "x"}
        ).encode(),
        lambda: b'{"id":"' + b"A" * 5000 + b'","kind":"panic"}',
        lambda: b"[" * 900 + b"]" * 900,
        lambda: json.dumps([1, 2, 3]).encode(),
        lambda: b'{"battery": "full"}',
        lambda: b"online",
        lambda: b"<script>alert(1)</script>",
        lambda: b"'; DROP TABLE alarms;--",
    ]
    return rng.choice(choices)()


async def test_stuck_button_does_not_starve_the_others(
    start_bridge: StartBridge, watcher: Peer, button: Peer
) -> None:
    run = await start_bridge(bridge={"flood_burst": 5, "flood_per_minute": 6})
    for i in range(300):
        button.publish("xl/dev/btn-qilong-001/alarm", {"id": f"s-{i}", "kind": "panic"})
    button.publish("xl/dev/btn-fenghuo-001/alarm", {"id": "ok", "kind": "panic"})
    await watcher.wait_for(acked("btn-fenghuo-001", "ok"))  # type: ignore[arg-type]
    await _until(lambda: run.metric("xl_bridge_rejected_total", reason="rate_limited") >= 290)
    stuck = watcher.messages(lambda m: m.topic == "xl/dev/btn-qilong-001/ack")
    assert 1 <= len(stuck) <= 10


async def test_heartbeats_status_and_silence(start_bridge: StartBridge, button: Peer) -> None:
    """Liveness is written in batches; a will message or silence marks a device
    offline once, as a low-priority supervision event."""
    run = await start_bridge()
    async with run.db.transaction() as conn:
        await conn.execute(
            update(devices).where(devices.c.id == "btn-fenghuo-002").values(heartbeat_interval_s=1)
        )
    for _ in range(50):
        button.publish("xl/dev/btn-qilong-001/heartbeat", {"battery": 88, "rssi": -60}, qos=0)
    button.publish("xl/dev/btn-qilong-002/heartbeat", {"battery": 9, "fw": "1.2.3"}, qos=0)
    button.publish("xl/dev/btn-anxicun-001/status", b"offline")
    button.publish("xl/dev/btn-fenghuo-002/heartbeat", {}, qos=0)

    async def state() -> dict[str, tuple[object, ...]]:
        async with run.db.read() as conn:
            rows = await conn.execute(
                select(devices.c.id, devices.c.battery, devices.c.online, devices.c.firmware)
            )
            return {r.id: (r.battery, r.online, r.firmware) for r in rows}  # fmt: skip

    await _until_async(lambda: _has(state, "btn-qilong-001", (88, True, None)))
    await _until_async(lambda: _has(state, "btn-qilong-002", (9, True, "1.2.3")))
    await _until_async(lambda: _has(state, "btn-anxicun-001", (None, False, None)))
    await _until_async(lambda: _has(state, "btn-fenghuo-002", (None, False, None)), timeout=5)
    async with run.db.read() as conn:
        query = select(supervision_events.c.device_id, supervision_events.c.kind)
        events = {(r[0], r[1]) for r in await conn.execute(query)}
    assert {
        ("btn-qilong-002", "low_battery"),
        ("btn-anxicun-001", "offline"),
        ("btn-fenghuo-002", "offline"),
    } <= events
    assert not any(d == "btn-qilong-001" for d, _ in events)


async def test_escalates_on_time(start_bridge: StartBridge, watcher: Peer, button: Peer) -> None:
    """Nobody acknowledged within escalation.town_s: the county sees it."""
    await start_bridge(escalation={"town_s": 1})
    button.publish("xl/dev/btn-fenghuo-001/alarm", {"id": "e1", "kind": "panic"})
    [ack] = await watcher.wait_for(acked("btn-fenghuo-001", "e1"))  # type: ignore[arg-type]
    [first] = await watcher.wait_for(centre_state(ack.json["alarm"], level="town"))
    [escalated] = await watcher.wait_for(centre_state(ack.json["alarm"], level="county"), timeout=5)
    waited = _seconds(escalated.json["updated_at"]) - _seconds(first.json["updated_at"])
    assert 0.95 <= waited <= 2.5
    assert escalated.topic == "xl/centre/yongshang/alarm"


async def test_escalates_after_a_restart_past_the_deadline(
    start_bridge: StartBridge, watcher: Peer, button: Peer
) -> None:
    """The deadline is stored: a bridge that was down past it escalates at once."""
    first = await start_bridge(escalation={"town_s": 1})
    button.publish("xl/dev/btn-qilong-002/alarm", {"id": "r1", "kind": "panic"})
    [ack] = await watcher.wait_for(acked("btn-qilong-002", "r1"))  # type: ignore[arg-type]
    await first.stop()
    await asyncio.sleep(1.5)
    assert not watcher.messages(centre_state(ack.json["alarm"], level="county"))
    await start_bridge(escalation={"town_s": 1})
    await watcher.wait_for(centre_state(ack.json["alarm"], level="county"), timeout=3)


async def test_town_broker_outage_keeps_alarms_in_order(
    start_bridge: StartBridge, watcher: Peer, button: Peer, tmp_path: object
) -> None:
    """The town centre's own broker goes down: alarms wait in the outbox and arrive,
    all and in order, when it is back."""
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    town = Mosquitto(tmp_path / "town").start()
    # The centre's own client keeps a persistent session, as a real centre system does.
    centre = Peer(town.port, "puxing-centre", ("xl/centre/puxing/alarm",), persistent=True)
    try:
        run = await start_bridge(bridge={"upstream": {"puxing": {"url": town.url}}})
        await _until(lambda: run.bridge.upstream["puxing"].connected.is_set())
        town.stop()
        for i in range(6):
            device = ("btn-qilong-001", "btn-qilong-002")[i % 2]
            button.publish(f"xl/dev/{device}/alarm", {"id": f"o-{i}", "kind": "panic"})
            await watcher.wait_for(acked(device, f"o-{i}"))  # type: ignore[arg-type]
        await asyncio.sleep(0.5)
        local = watcher.messages(on_topic("xl/centre/puxing/alarm"))
        expected = [(m.json["alarm"], m.json["presses"]) for m in local]
        assert len(expected) == 6  # each press announced (two alarms, presses 1..3)
        assert centre.messages() == []
        town.start()
        got = await centre.wait_for(on_topic("xl/centre/puxing/alarm"), count=6, timeout=45)
        assert [(m.json["alarm"], m.json["presses"]) for m in got] == expected
        await _until_async(lambda: _outbox_empty(run.db))
    finally:
        centre.close()
        town.stop()


async def test_zigbee2mqtt_buttons(start_bridge: StartBridge, watcher: Peer, button: Peer) -> None:
    """A Zigbee SOS button mapped in config raises a panic alarm for its household."""
    await start_bridge(bridge={"zigbee2mqtt": {"devices": {"wang-sos": "btn-qilong-001"}}})
    button.publish("zigbee2mqtt/kitchen-lamp", {"state": "ON"})
    button.publish("zigbee2mqtt/wang-sos", {"action": "emergency", "battery": 64})
    [centre] = await watcher.wait_for(lambda m: m.topic == "xl/centre/puxing/alarm")
    assert (centre.json["device"], centre.json["kind"]) == ("btn-qilong-001", "panic")


def _seconds(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


async def _outbox_empty(db: object) -> bool:
    from xueliang.storage import Database
    from xueliang.storage.tables import outbox

    assert isinstance(db, Database)
    async with db.read() as conn:
        return (await conn.execute(select(outbox.c.id))).first() is None


async def _has(state: object, device: str, expected: tuple[object, ...]) -> bool:
    assert callable(state)
    current = await state()
    return bool(current[device] == expected)


async def _until(condition: object, timeout: float = 10) -> None:
    assert callable(condition)
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


async def _until_async(condition: object, timeout: float = 10) -> None:
    assert callable(condition)
    async with asyncio.timeout(timeout):
        while not await condition():
            await asyncio.sleep(0.05)


async def test_no_received_before_the_alarm_is_stored(
    start_bridge: StartBridge, watcher: Peer, button: Peer, demo_dir: object
) -> None:
    """While the database cannot take the write, the device hears nothing (and keeps
    resending); once it can, the alarm is stored and only then answered."""
    import sqlite3
    from pathlib import Path

    assert isinstance(demo_dir, Path)
    run = await start_bridge()
    blocker = sqlite3.connect(demo_dir / "xueliang.db", isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        button.publish("xl/dev/btn-anxicun-002/alarm", {"id": "w1", "kind": "panic"})
        await asyncio.sleep(1.5)
        assert watcher.messages(acked("btn-anxicun-002", "w1")) == []  # type: ignore[arg-type]
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    [ack] = await watcher.wait_for(acked("btn-anxicun-002", "w1"))  # type: ignore[arg-type]
    async with run.db.read() as conn:
        stored = await conn.execute(select(alarms.c.id).where(alarms.c.id == ack.json["alarm"]))
        assert stored.first() is not None
