"""`xueliang run --demo` as an operator starts it: healthy, observable, and gone
without a trace on Ctrl-C or SIGTERM."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from bench.procs import descendants, free_port, wait_http

pytestmark = pytest.mark.slow


@dataclass
class Running:
    process: subprocess.Popen[str]
    http: int
    mqtt: int

    def children(self) -> set[int]:
        """Every descendant process (ffmpeg, brokers…) of the server."""
        return descendants(self.process.pid)

    def stop(self, sig: signal.Signals) -> tuple[int, str, str]:
        self.process.send_signal(sig)
        out, err = self.process.communicate(timeout=20)
        return self.process.returncode, out, err


def start(data_dir: Path, *args: str) -> Running:
    http, broker = free_port(), free_port()
    env = {
        **os.environ,
        "XL_DATA_DIR": str(data_dir),
        "XL_HTTP_HOST": "127.0.0.1",
        "XL_HTTP_PORT": str(http),
        "XL_MQTT_PORT": str(broker),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "xueliang", "run", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return Running(process, http, broker)


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Running]:
    running = start(tmp_path / "var", "--demo")
    try:
        wait_http(f"http://127.0.0.1:{running.http}/healthz", timeout=60)
    except TimeoutError:
        running.process.kill()
        _, err = running.process.communicate()
        pytest.fail(f"xueliang run did not come up:\n{err}")
    yield running
    children = running.children()
    if running.process.poll() is None:
        running.process.kill()
    running.process.communicate()  # reaps it and closes the pipes
    for pid in children:  # a killed server's helpers must not outlive the test either
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_demo_comes_up_healthy(demo: Running) -> None:
    health = json.loads(wait_http(f"http://127.0.0.1:{demo.http}/healthz"))
    assert health["status"] == "ok"
    assert {"database", "mqtt_broker", "video", "portal"} <= set(health["parts"])
    assert health["parts"]["mqtt_broker"] == {"status": "ok", "embedded": True, "port": demo.mqtt}
    metrics = wait_http(f"http://127.0.0.1:{demo.http}/metrics").decode()
    assert 'xl_http_requests_total{method="GET",route="healthz",status="200"}' in metrics
    assert "process_resident_memory_bytes" in metrics


def test_embedded_broker_carries_messages(demo: Running) -> None:
    """The zero-setup broker really is an MQTT broker a device can use."""
    subscribed, got = threading.Event(), threading.Event()
    received: list[bytes] = []

    def on_message(_c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        received.append(bytes(message.payload))
        got.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-device")
    client.on_message = on_message
    client.on_subscribe = lambda *_: subscribed.set()
    client.connect("127.0.0.1", demo.mqtt)
    client.loop_start()
    try:
        client.subscribe("xl/test/echo", qos=1)
        assert subscribed.wait(5)
        client.publish("xl/test/echo", b"ping", qos=1).wait_for_publish(5)
        assert got.wait(5)
    finally:
        client.loop_stop()
        client.disconnect()
    assert received == [b"ping"]


def test_demo_button_alarm_is_answered(demo: Running) -> None:
    """Zero setup, end to end: a demo button's alarm through the embedded broker is
    stored and answered `received`."""
    answered = threading.Event()
    acks: list[bytes] = []

    def on_message(_c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        acks.append(bytes(message.payload))
        answered.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="btn-qilong-001")
    client.on_message = on_message
    client.connect("127.0.0.1", demo.mqtt)
    client.loop_start()
    try:
        client.subscribe("xl/dev/btn-qilong-001/ack", qos=1)
        for _ in range(50):  # a button resends until it hears `received`
            client.publish("xl/dev/btn-qilong-001/alarm", b'{"id":"demo-1","kind":"panic"}', 1)
            if answered.wait(0.2):
                break
    finally:
        client.loop_stop()
        client.disconnect()
    assert json.loads(acks[0]) == {"id": "demo-1", "alarm": 1, "state": "received"}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_stops_cleanly(demo: Running, sig: signal.Signals) -> None:
    """Ctrl-C or a service manager's SIGTERM: exit 0, no traceback, no orphans."""
    children = demo.children()
    code, out, err = demo.stop(sig)
    assert code == 0, err
    assert "Traceback" not in err
    assert "Demo county xinjin" in out and "/tv/pair/" in out
    # Helpers (the telemetry worker, multiprocessing's resource tracker) leave within
    # moments of the server; none may stay behind.
    deadline = time.monotonic() + 5
    while any(Path(f"/proc/{pid}").exists() for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in children:
        assert not Path(f"/proc/{pid}").exists(), f"child {pid} outlived the server"


@pytest.mark.parametrize("taken", ["XL_HTTP_PORT", "XL_MQTT_PORT"])
def test_busy_port_is_a_clear_error(tmp_path: Path, taken: str) -> None:
    """A second instance on the same ports says so in one line and exits 1."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        ports = {
            "XL_HTTP_PORT": str(free_port()),
            "XL_MQTT_PORT": str(free_port()),
            taken: str(port),
        }
        process = subprocess.run(
            [sys.executable, "-m", "xueliang", "run"],
            env={**os.environ, "XL_DATA_DIR": str(tmp_path), "XL_HTTP_HOST": "127.0.0.1", **ports},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert process.returncode == 1, process.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in process.stderr
    assert "Traceback" not in process.stderr
