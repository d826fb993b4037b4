"""Crash safety: the bridge process is killed (SIGKILL) in the middle of a burst and
started again. Devices resend until they hear `received`, as the contract says; every
alarm message is then stored exactly once."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.procs import free_port, wait_http
from tests.mosquitto import Mosquitto
from tests.mqtt_bridge.peers import Peer
from xueliang import provisioning
from xueliang.storage import Database

pytestmark = pytest.mark.slow

HOUSEHOLDS = 60
PRESSES = 5  # per device: 300 messages in all


def start_bridge(
    data_dir: Path, broker: Mosquitto, log: Path
) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {
        **os.environ,
        "XL_DATA_DIR": str(data_dir),
        "XL_MQTT_URL": broker.url,
        "XL_HTTP_HOST": "127.0.0.1",
        "XL_HTTP_PORT": str(port),
    }
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "xueliang", "bridge"], env=env, stdout=out, stderr=out
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        health = json.loads(wait_http(f"http://127.0.0.1:{port}/healthz", timeout=30))
        if health["parts"].get("bridge", {}).get("connected"):
            return process, port
        time.sleep(0.05)
    process.kill()
    raise TimeoutError(log.read_text())


async def provision(data_dir: Path) -> None:
    """One button in each of HOUSEHOLDS new households of 骑龙社区."""
    rows = "".join(f"crash-{i:03d},crash-h{i:03d},qilong,户{i:03d},,\n" for i in range(HOUSEHOLDS))
    database = Database(f"sqlite:///{data_dir / 'xueliang.db'}")
    await provisioning.import_devices(database, (provisioning.HEADER_LINE + rows).encode())
    await database.close()


def test_sigkill_mid_burst_loses_and_duplicates_nothing(
    demo_dir: Path, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    asyncio.run(provision(demo_dir))

    log = tmp_path / "bridge.log"
    bridge, _ = start_bridge(demo_dir, mosquitto, log)
    devices = Peer(mosquitto.port, "simulated-buttons", subscribe=("xl/dev/+/ack",))
    try:
        sent = [(f"crash-{i:03d}", f"p{n}") for n in range(PRESSES) for i in range(HOUSEHOLDS)]

        def received() -> set[tuple[str, str]]:
            return {
                (m.topic.split("/")[2], m.json["id"])
                for m in devices.messages(lambda m: m.json.get("state") == "received")
            }

        def kill() -> None:
            bridge.send_signal(signal.SIGKILL)  # mid-burst, no goodbye
            bridge.wait()

        killed = False
        for count, (device, message_id) in enumerate(sent):
            devices.publish(f"xl/dev/{device}/alarm", {"id": message_id, "kind": "panic"})
            if count % 5 == 0:
                time.sleep(0.01)  # a burst of about 0.6 s, so the kill lands inside it
            if not killed and len(received()) >= 60:
                kill()
                killed = True
        deadline = time.monotonic() + 20
        while not killed and time.monotonic() < deadline:  # a slow (loaded) machine
            if len(received()) >= 60:
                kill()
                killed = True
            time.sleep(0.001)
        assert killed, "the bridge never confirmed 60 alarms"
        assert len(received()) < len(sent)
        bridge, _ = start_bridge(demo_dir, mosquitto, log)

        deadline = time.monotonic() + 60
        while (missing := set(sent) - received()) and time.monotonic() < deadline:
            for device, message_id in sorted(missing):  # what a button does: resend
                devices.publish(f"xl/dev/{device}/alarm", {"id": message_id, "kind": "panic"})
            time.sleep(1.0)
        assert not missing, f"{len(missing)} alarms never confirmed"
    finally:
        devices.close()
        bridge.terminate()
        bridge.wait(timeout=20)

    with sqlite3.connect(demo_dir / "xueliang.db") as db:
        stored = db.execute(
            "SELECT device_id, message_id FROM alarm_messages WHERE device_id LIKE 'crash-%'"
        ).fetchall()
        alarms = db.execute(
            "SELECT count(*), sum(presses) FROM alarms WHERE device_id LIKE 'crash-%'"
        ).fetchone()
    assert sorted(stored) == sorted(sent)  # each exactly once (it is the primary key)
    assert alarms == (HOUSEHOLDS, HOUSEHOLDS * PRESSES)  # one alarm per household
