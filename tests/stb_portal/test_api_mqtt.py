"""The console's side of the alarm path against a real Mosquitto: a button's alarm
reaches the API and the event stream, staff act, and the button hears it; a portal
in another process learns of changes through the MQTT event bus."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_aiohttp import AiohttpClient

from tests.mosquitto import Mosquitto
from tests.mqtt_bridge.peers import Peer
from tests.stb_portal.staff import EventReader, bearer
from xueliang.cli.serve import build_app
from xueliang.config import Settings
from xueliang.signing import load_secret_key
from xueliang.web import ALARMS


@pytest.fixture
def button(mosquitto: Mosquitto) -> Iterator[Peer]:
    peer = Peer(mosquitto.port, "test-button", subscribe=("xl/dev/+/ack",))
    yield peer
    peer.close()


def settings(demo_dir: Path, mosquitto: Mosquitto, client_id: str) -> Settings:
    return Settings.model_validate(
        {"data_dir": str(demo_dir), "mqtt": {"url": mosquitto.url, "client_id": client_id}}
    )


async def test_button_to_console_and_back(
    aiohttp_client: AiohttpClient, demo_dir: Path, mosquitto: Mosquitto, button: Peer
) -> None:
    app = build_app(
        settings(demo_dir, mosquitto, "bridge-a"), load_secret_key(demo_dir),
        parts=["portal", "bridge"],
    )  # fmt: skip
    client = await aiohttp_client(app)
    headers = await bearer(client, demo_dir, "puxing-centre")
    events = EventReader(await client.get("/api/v1/events", headers=headers))
    await events.until("hello")
    await asyncio.sleep(1)  # the bridge subscribes after start-up
    button.publish("xl/dev/btn-qilong-001/alarm", {"id": "press-1", "kind": "medical"})
    raised = await events.until("alarm", timeout=10)
    alarm = raised.data["alarm"]
    assert (raised.data["device"], raised.data["state"]) == ("btn-qilong-001", "received")
    listed = await (await client.get("/api/v1/alarms?state=open", headers=headers)).json()
    assert [a["alarm"] for a in listed["alarms"]] == [alarm]
    response = await client.post(
        f"/api/v1/alarms/{alarm}/actions", json={"action": "acknowledge"}, headers=headers
    )
    assert (await response.json())["state"] == "acknowledged"
    [told] = await button.wait_for(
        lambda m: m.topic == "xl/dev/btn-qilong-001/ack" and m.json["state"] == "acknowledged"
    )
    assert told.json == {"id": "press-1", "alarm": alarm, "state": "acknowledged"}
    changed = await events.until("alarm", state="acknowledged")
    assert changed.data["changes"] == ["acknowledged"]
    events.response.close()


async def test_a_portal_process_hears_changes_made_elsewhere(
    aiohttp_client: AiohttpClient, demo_dir: Path, mosquitto: Mosquitto, button: Peer
) -> None:
    """Two processes sharing the database and the broker: the bridge stores a press,
    and the portal (with its own feed) pushes it to its consoles at once."""
    key = load_secret_key(demo_dir)
    bridge = await aiohttp_client(
        build_app(settings(demo_dir, mosquitto, "bridge-b"), key, parts=["bridge"])
    )
    portal_app = build_app(settings(demo_dir, mosquitto, "portal-b"), key, parts=["portal"])
    portal = await aiohttp_client(portal_app)
    portal_app[ALARMS].listeners.clear()  # only the bus may tell it
    headers = await bearer(portal, demo_dir, "xinjin-centre")
    events = EventReader(await portal.get("/api/v1/events", headers=headers))
    await events.until("hello")
    await asyncio.sleep(1)
    button.publish("xl/dev/btn-fenghuo-001/alarm", {"id": "p-9", "kind": "fire"})
    loop = asyncio.get_running_loop()
    started = loop.time()
    raised = await events.until("alarm", timeout=10)
    # The feed's fallback poll is 5 s: arriving well before it means the bus woke it.
    assert loop.time() - started < 3
    assert raised.data["device"] == "btn-fenghuo-001"
    await bridge.close()
    events.response.close()
