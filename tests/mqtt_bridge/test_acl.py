"""`xueliang mosquitto-config`: the password file, ACL and configuration a production
Mosquitto runs with, checked as text and against a real broker with real clients."""

from __future__ import annotations

import os
import pwd
import queue
import signal
import stat
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from mqtt_bridge import acl
from tests.conftest import Cli
from tests.mosquitto import Mosquitto
from xueliang.credentials import hash_device_password, verify_device_password
from xueliang.errors import InvalidInput

TIMEOUT = 5.0
BRIDGE_PASSWORD = "somepass"
A, B = "btn-qilong-001", "btn-qilong-002"  # two demo buttons


def configure(cli: Cli, folder: Path, port: int = 1883) -> dict[str, Any]:
    result = cli(
        "mosquitto-config", "--dir", str(folder), "--port", str(port), "--bind", "127.0.0.1",
        "--json",
    )  # fmt: skip
    assert result.code == 0, result.err
    answer: dict[str, Any] = result.json
    return answer


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Content and permission bits of the three files."""
    names = (acl.PASSWORD_FILE, acl.ACL_FILE, acl.CONFIG_FILE)
    return {
        n: ((folder / n).read_bytes(), stat.S_IMODE((folder / n).stat().st_mode)) for n in names
    }


# --- the files as text ---------------------------------------------------------------


def test_password_file_is_sorted_whatever_the_input_order() -> None:
    """Deterministic files mean a re-run that changes nothing rewrites the same bytes,
    and a diff of two runs shows exactly the accounts that changed."""
    accounts = [("b-2", "$7$1000$c2FsdA==$aGFzaA=="), ("a-1", "$7$1000$c2FsdA==$aGFzaA==")]
    text = acl.password_file(accounts)
    assert text == acl.password_file(reversed(accounts))
    assert text.splitlines() == [f"{name}:{hashed}" for name, hashed in sorted(accounts)]


@pytest.mark.parametrize(
    "name", ["", "a:b", "a b", "a\nb", "a\tb", "dev/x", "dev+", "#dev", "dëv", "a\x00b"]
)
def test_hostile_usernames_are_refused(name: str) -> None:
    """A ':' or a line break would forge a second account line; '+', '#' and '/' turn
    the `%u` of a pattern into a wildcard over other devices' topics."""
    with pytest.raises(InvalidInput):
        acl.password_file([(name, hash_device_password("x"))])
    with pytest.raises(InvalidInput):
        acl.acl_file("xl", name)


def test_damaged_hashes_and_duplicates_are_refused() -> None:
    """A hash carrying a line break would inject an account; a username listed twice
    would leave it to Mosquitto which password counts."""
    good = hash_device_password("x")
    with pytest.raises(InvalidInput, match="hash"):
        acl.password_file([("a", good + "\nevil:" + good)])
    with pytest.raises(InvalidInput, match="hash"):
        acl.password_file([("a", "plaintext")])
    with pytest.raises(InvalidInput, match="twice"):
        acl.password_file([("a", good), ("a", good)])


def test_acl_grants_devices_only_their_own_topics() -> None:
    """Mosquitto denies whatever the ACL does not grant: the file must hold the
    contract's device topics and nothing broader."""
    text = acl.acl_file("xl", "bridge")
    rules = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert rules == [
        "user bridge",
        "topic readwrite #",
        "pattern write xl/dev/%u/alarm",
        "pattern write xl/dev/%u/heartbeat",
        "pattern write xl/dev/%u/status",
        "pattern read xl/dev/%u/ack",
    ]
    assert "pattern write cn-1/dev/%u/alarm" in acl.acl_file("cn-1", "bridge")
    with pytest.raises(InvalidInput):
        acl.acl_file("xl/#", "bridge")


def test_broker_config_names_absolute_paths(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Mosquitto resolves relative paths from its own working directory, which is
    not the operator's; every path in the file is absolute."""
    monkeypatch.chdir(tmp_path)
    text = acl.broker_config(Path("broker"), 1884, "::")
    assert "listener 1884 ::\n" in text
    assert f"password_file {tmp_path}/broker/passwd\n" in text
    assert f"acl_file {tmp_path}/broker/acl\n" in text
    assert f"persistence_location {tmp_path}/broker/data/\n" in text
    with pytest.raises(InvalidInput):
        acl.broker_config(tmp_path, 0, "0.0.0.0")
    with pytest.raises(InvalidInput):
        acl.broker_config(tmp_path, 1883, "0.0.0.0 1884")


# --- the command -----------------------------------------------------------------------


def test_rerun_is_idempotent_and_keeps_the_password_file_private(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Operators re-run the command after every provisioning; with nothing new it must
    rewrite the same bytes, and the hashes stay readable by their owner only."""
    monkeypatch.setenv("XL_MQTT_URL", f"mqtt://bridge:{BRIDGE_PASSWORD}@127.0.0.1:1883")
    folder = tmp_path / "mosquitto"
    answer = configure(cli, folder)
    assert answer == {
        "dir": str(folder),
        "files": {
            "password_file": str(folder / "passwd"),
            "acl_file": str(folder / "acl"),
            "conf": str(folder / "mosquitto.conf"),
        },
        "devices": 6,
        "bridge": {"username": "bridge", "password": None},
    }
    first = snapshot(folder)
    assert {name: mode for name, (_, mode) in first.items()} == {
        "passwd": 0o600,
        "acl": 0o644,
        "mosquitto.conf": 0o644,
    }
    assert configure(cli, folder) == answer
    assert snapshot(folder) == first
    assert sorted(p.name for p in folder.iterdir()) == ["acl", "data", "mosquitto.conf", "passwd"]


def test_device_added_later_appears_after_rerun(cli: Cli, tmp_path: Path) -> None:
    """The password file is a copy of the database: a new button can log in only once
    the command has run again."""
    folder = tmp_path / "mosquitto"
    assert configure(cli, folder)["devices"] == 6
    new = cli("device", "add", "--household", "qilong-001", "--id", "btn-new-1", "--json").json
    assert configure(cli, folder)["devices"] == 7
    accounts = acl.read_password_file(folder / "passwd")
    assert verify_device_password(accounts["btn-new-1"], new["password"])
    assert list(accounts) == sorted(accounts)


def test_generated_bridge_password_is_shown_once(cli: Cli, tmp_path: Path) -> None:
    """Without XL_MQTT_URL credentials the command makes the bridge account and says
    what to set; a re-run keeps it, since a new password would lock out the running
    bridge at the next reload."""
    folder = tmp_path / "mosquitto"
    text = cli("mosquitto-config", "--dir", str(folder), "--port", "1999")
    assert text.code == 0, text.err
    [line] = [x for x in text.out.splitlines() if "XL_MQTT_URL=" in x]
    password = line.split("mqtt://bridge:")[1].split("@")[0]
    assert line.endswith(f"XL_MQTT_URL=mqtt://bridge:{password}@127.0.0.1:1999")
    assert f"mosquitto -c {folder}/mosquitto.conf" in text.out
    assert "kill -HUP" in text.out
    stored = acl.read_password_file(folder / "passwd")["bridge"]
    assert verify_device_password(stored, password)
    again = configure(cli, folder, port=1999)
    assert again["bridge"] == {"username": "bridge", "password": None}
    assert acl.read_password_file(folder / "passwd")["bridge"] == stored


def test_bridge_username_must_not_be_a_device_id(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """One account would hold two passwords and the button would get the bridge's
    rights; the command refuses and writes nothing."""
    monkeypatch.setenv("XL_MQTT_URL", f"mqtt://{A}:secret@127.0.0.1:1883")
    result = cli("mosquitto-config", "--dir", str(tmp_path / "mosquitto"))
    assert result.code == 1 and "is a device id" in result.err
    assert not (tmp_path / "mosquitto").exists()


# --- against a real Mosquitto -----------------------------------------------------------


class GeneratedMosquitto(Mosquitto):
    """Mosquitto started with exactly the mosquitto.conf the command wrote."""

    def config(self) -> str:
        return (self.folder / acl.CONFIG_FILE).read_text(encoding="utf-8")


@dataclass
class Deployment:
    broker: GeneratedMosquitto
    passwords: dict[str, str]  # device id -> password, from `seed-demo --json`
    cli: Cli

    def device(self, device_id: str) -> AbstractContextManager[Session]:
        return session(self.broker.port, device_id, self.passwords[device_id])

    def bridge(self) -> AbstractContextManager[Session]:
        return session(self.broker.port, "bridge", BRIDGE_PASSWORD)


def hand_to_broker_user(folder: Path) -> None:
    """Started as root, Mosquitto becomes the user `mosquitto` before it reads its
    files; do what the command tells operators to do."""
    if os.geteuid() != 0:
        return
    try:
        user = pwd.getpwnam("mosquitto")
    except KeyError:
        return
    for path in (folder.parent, folder, *folder.rglob("*")):
        os.chown(path, user.pw_uid, user.pw_gid)


@pytest.fixture
def broker_dir() -> Iterator[Path]:
    """A folder the user `mosquitto` can reach (pytest's own tmp_path is private)."""
    with tempfile.TemporaryDirectory(prefix="xl-mosquitto-") as folder:
        yield Path(folder) / "mosquitto"


@pytest.fixture
def deployment(cli: Cli, monkeypatch: pytest.MonkeyPatch, broker_dir: Path) -> Iterator[Deployment]:
    """The demo county's accounts in a real Mosquitto, the bridge's from XL_MQTT_URL."""
    broker = GeneratedMosquitto(broker_dir)
    monkeypatch.setenv("XL_MQTT_URL", f"mqtt://bridge:{BRIDGE_PASSWORD}@127.0.0.1:{broker.port}")
    passwords = {d["id"]: d["password"] for d in cli("seed-demo", "--json").json["devices"]}
    configure(cli, broker.folder, broker.port)
    hand_to_broker_user(broker.folder)
    broker.start()
    try:
        yield Deployment(broker, passwords, cli)
    finally:
        broker.stop()


class Session:
    """One paho client and its network thread; `close()` stops both, refused or not."""

    def __init__(self, port: int, username: str | None, password: str | None = None) -> None:
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._connack: queue.Queue[ReasonCode] = queue.Queue()
        self._subscribed: set[int] = set()
        self._changed = threading.Condition()
        client_id = f"test-{username}-{uuid.uuid4().hex[:8]}"
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        try:
            self.reason = self._connack.get(timeout=TIMEOUT)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def subscribe(self, *topics: str) -> None:
        _, mid = self.client.subscribe([(topic, 1) for topic in topics])
        with self._changed:
            assert self._changed.wait_for(lambda: mid in self._subscribed, TIMEOUT), topics

    def publish(self, topic: str, payload: str, *, retain: bool = False) -> None:
        """Publish at QoS 1 and wait for the broker's PUBACK."""
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(TIMEOUT)

    def next_message(self) -> tuple[str, bytes]:
        return self.messages.get(timeout=TIMEOUT)

    def _on_connect(
        self,
        _c: mqtt.Client,
        _u: Any,
        _f: mqtt.ConnectFlags,
        reason: ReasonCode,
        _p: Properties | None,
    ) -> None:
        self._connack.put(reason)

    def _on_subscribe(
        self, _c: mqtt.Client, _u: Any, mid: int, _r: list[ReasonCode], _p: Properties | None
    ) -> None:
        with self._changed:
            self._subscribed.add(mid)
            self._changed.notify_all()

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        self.messages.put((message.topic, bytes(message.payload)))


@contextmanager
def session(port: int, username: str | None, password: str | None = None) -> Iterator[Session]:
    """A connected client, closed on exit."""
    client = Session(port, username, password)
    try:
        assert not client.reason.is_failure, f"{username}: {client.reason}"
        yield client
    finally:
        client.close()


def refusal(port: int, username: str | None, password: str | None = None) -> ReasonCode:
    client = Session(port, username, password)
    client.close()
    return client.reason


def test_devices_log_in_with_their_own_password_only(deployment: Deployment) -> None:
    """Anyone who could log in as a button could raise false alarms in its name."""
    port = deployment.broker.port
    with deployment.device(A) as device:
        assert device.reason.value == 0
    assert refusal(port, A, deployment.passwords[B]).is_failure
    assert refusal(port, "btn-nobody", deployment.passwords[A]).is_failure
    assert refusal(port, None).is_failure  # anonymous
    assert refusal(port, "bridge", "not-the-password").is_failure


def test_device_alarm_reaches_the_bridge_but_not_one_in_another_name(
    deployment: Deployment,
) -> None:
    """A button (or someone who took its password) must not raise alarms for another
    household. Mosquitto drops a denied publish silently (PUBACK and all, in MQTT
    3.1.1), so the proof is that the valid alarm published after it arrives first."""
    with deployment.bridge() as bridge, deployment.device(A) as device:
        bridge.subscribe("xl/#")
        device.publish(f"xl/dev/{B}/alarm", '{"id": "forged", "kind": "panic"}')
        device.publish(f"xl/dev/{A}/alarm", '{"id": "m1", "kind": "panic"}')
        assert bridge.next_message() == (f"xl/dev/{A}/alarm", b'{"id": "m1", "kind": "panic"}')
        assert bridge.messages.empty()


def test_acks_reach_only_their_own_device(deployment: Deployment) -> None:
    """An ack tells a household that help is coming; another button must not read it.
    The bridge's acks to one publisher arrive in order, so A's own ack arriving first
    proves B's was withheld from A."""
    with (
        deployment.bridge() as bridge,
        deployment.device(A) as device_a,
        deployment.device(B) as device_b,
    ):
        device_a.subscribe(f"xl/dev/{B}/ack", f"xl/dev/{A}/ack")
        device_b.subscribe(f"xl/dev/{B}/ack")
        bridge.publish(f"xl/dev/{B}/ack", '{"id": "m1", "state": "received"}')
        bridge.publish(f"xl/dev/{A}/ack", '{"id": "m2", "state": "received"}')
        assert device_b.next_message()[0] == f"xl/dev/{B}/ack"
        assert device_a.next_message()[0] == f"xl/dev/{A}/ack"
        assert device_a.messages.empty()


def test_devices_cannot_read_other_devices_or_the_centres(deployment: Deployment) -> None:
    """Alarms and centre messages carry households' names, addresses and phones.
    Mosquitto 2.0 grants a device's wildcard subscription and filters each message
    on delivery, so the check is what arrives: only A's own ack."""
    with (
        deployment.bridge() as bridge,
        deployment.device(A) as device_a,
        deployment.device(B) as device_b,
    ):
        device_a.subscribe("xl/#", "xl/dev/+/alarm", "#")
        device_b.publish(f"xl/dev/{B}/alarm", '{"id": "m1", "kind": "fire"}')
        device_b.publish(f"xl/dev/{B}/status", "online", retain=True)
        bridge.publish("xl/centre/puxing/alarm", '{"alarm": 1}')
        bridge.publish(f"xl/dev/{A}/ack", '{"id": "m9", "state": "received"}')
        topic, _ = device_a.next_message()
        assert topic == f"xl/dev/{A}/ack"
        time.sleep(0.2)  # a second copy through another matching subscription, if any
        while not device_a.messages.empty():
            assert device_a.messages.get()[0] == f"xl/dev/{A}/ack"


def test_bridge_from_xl_mqtt_url_reads_and_writes_everything(deployment: Deployment) -> None:
    """The bridge ingests every device topic and publishes acks and centre messages;
    its password is the one XL_MQTT_URL gives it."""
    with deployment.bridge() as bridge, deployment.device(A) as device:
        bridge.subscribe("xl/#")
        device.publish(f"xl/dev/{A}/heartbeat", '{"battery": 80}')
        device.publish(f"xl/dev/{A}/status", "online", retain=True)
        sent = [
            (f"xl/dev/{A}/ack", '{"id": "m1", "state": "received"}'),
            ("xl/centre/puxing/alarm", '{"alarm": 1}'),
            ("xl/centre/puxing/command", '{"alarm": 1, "action": "acknowledge"}'),
            ("xl/bridge/status", "online"),
        ]
        for topic, payload in sent:
            bridge.publish(topic, payload)
        got = [bridge.next_message() for _ in range(2 + len(sent))]
        assert sorted(got) == sorted(
            [
                (f"xl/dev/{A}/heartbeat", b'{"battery": 80}'),
                (f"xl/dev/{A}/status", b"online"),
                *((t, p.encode()) for t, p in sent),
            ]
        )


def test_rerun_and_sighup_let_a_new_device_in(deployment: Deployment) -> None:
    """Buttons are provisioned while the broker runs; re-running the command and
    SIGHUP must let the new one in without a restart (and, as root, the rewritten
    files keep the owner Mosquitto reads them as)."""
    new = deployment.cli("device", "add", "--household", "qilong-002", "--json").json
    port = deployment.broker.port
    assert refusal(port, new["id"], new["password"]).is_failure
    owner = (deployment.broker.folder / "passwd").stat().st_uid
    configure(deployment.cli, deployment.broker.folder, port)
    assert (deployment.broker.folder / "passwd").stat().st_uid == owner
    assert deployment.broker.process is not None
    deployment.broker.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + TIMEOUT
    while (reason := refusal(port, new["id"], new["password"])).is_failure:
        assert time.monotonic() < deadline, f"still refused after SIGHUP: {reason}"
        time.sleep(0.05)
    with deployment.device(A) as device:  # the old accounts survive the reload
        assert device.reason.value == 0
