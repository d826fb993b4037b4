"""Alarm events to open staff consoles (Server-Sent Events, `GET /api/v1/events`):
publish of a button press over MQTT → the `alarm` event on every console, with 1
console (the baseline) and then 200 open at once, in two setups on a private Mosquitto:

- all-in-one: `xueliang run` (portal, bridge and event feed in one process; the feed is
  woken by the process's own commits), as production's single box;
- split: `xueliang bridge` + `xueliang portal` sharing the SQLite file and the broker
  (the portal's feed is woken by the MQTT event bus, `xl/centre/+/alarm`).

Each press comes from a device not pressed before, so it opens a new alarm and each
console gets exactly one `alarm` event with `"state": "received"` for it. Aim: p99 over
every (console, alarm) pair ≤ 100 ms with 200 consoles.

The consoles are plain asyncio protocols in this process, one TCP connection each;
the arrival time is taken when the bytes come in, before anything is parsed (parsing
waits for the end of the phase), so the client adds as little as it can."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import re
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.alarm_rig import Rig, device_ids
from bench.figures import Row, ms, print_table, rank
from bench.mqtt_clients import AlarmProbe, Press
from bench.procs import (
    cpu_seconds,
    free_port,
    machine_busy,
    machine_cpu,
    start_mosquitto,
    start_python,
    stop,
    wait_http,
)
from xueliang.signing import derive, load_secret_key

CONSOLES = (1, 200)
RATE = 5.0  # presses per second
PRESSES = 50  # per phase: 10 s at 5/s
WARMUP_PRESSES = 2
AIM_MS = 100.0
ACCOUNT = "xinjin-centre"  # county-wide: sees every alarm of the demo county
CONNECT_BATCH = 50  # connections opened at once (aiohttp listens with a backlog of 128)
STEP_TIMEOUT_S = 30.0
DRAIN_S = 5.0  # after the last press, how long events may still come


# --- the processes -------------------------------------------------------------------


class ConsoleRig(Rig):
    """Mosquitto, the demo county plus `devices`, and either `xueliang run` (all in one)
    or `xueliang bridge` + `xueliang portal`; `portal_port` serves the consoles."""

    def __init__(self, name: str, devices: Sequence[str], all_in_one: bool) -> None:
        super().__init__(name, devices)
        self.all_in_one = all_in_one
        self.portal: subprocess.Popen[bytes] | None = None
        self.portal_port = self.http_port if all_in_one else free_port()
        self.portal_log = self.folder / "portal.log"

    def _start(self) -> None:
        # Callbacks run last first: the portal's note follows the Rig's log summary.
        self._stack.callback(self._note_portal_log)
        self._stack.callback(self._report_logs)
        (self.folder / "empty.toml").write_text("")
        mosquitto = start_mosquitto(self.folder / "mosquitto", self.mqtt_port)
        self._stack.callback(stop, mosquitto)
        self._register()
        # The bridge's process (`run` in the all-in-one setup) is `self.bridge`, so the
        # Rig's readiness check (healthz connected, then the retained `online`) holds.
        command = "run" if self.all_in_one else "bridge"
        self.bridge = start_python(["-m", "xueliang", command], self.env, log=self.bridge_log)
        self._stack.callback(self.stop_bridge)
        self._wait_ready()
        if not self.all_in_one:
            env = {**self.env, "XL_HTTP_PORT": str(self.portal_port)}
            self.portal = start_python(["-m", "xueliang", "portal"], env, log=self.portal_log)
            self._stack.callback(stop, self.portal)
            wait_http(f"http://127.0.0.1:{self.portal_port}/healthz", STEP_TIMEOUT_S)

    @property
    def portal_pid(self) -> int:
        process = self.bridge if self.all_in_one else self.portal
        assert process is not None
        return process.pid

    def _note_portal_log(self) -> None:
        if self.all_in_one:
            return  # the portal's lines are in the bridge's log
        self.log_notes.append(f"portal {log_summary(self.portal_log)}")
        keep = os.environ.get("BENCH_LOG_DIR")
        if keep and self.portal_log.exists():
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(self.portal_log, Path(keep) / f"{self.name}-portal.log")

    def followers(self) -> int:
        """How many event streams the portal says it serves (its /healthz)."""
        url = f"http://127.0.0.1:{self.portal_port}/healthz"
        with urllib.request.urlopen(url, timeout=5) as response:
            parts = json.loads(response.read())["parts"]
        return int(parts["portal"]["event_followers"])

    def sign_in(self) -> str:
        """A Bearer token of the county-wide demo account."""
        password = derive(load_secret_key(self.data_dir), "demo-staff", ACCOUNT, length=16)
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.portal_port}/api/v1/session",
            data=json.dumps({"username": ACCOUNT, "password": password}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            if response.status != 201:
                raise RuntimeError(f"sign-in answered {response.status}")
            token: str = json.loads(response.read())["token"]
            return token


def log_summary(log: Path) -> str:
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return "log: none"
    notable = [
        line
        for line in lines
        if re.search(r"\b(WARNING|ERROR|CRITICAL)\b", line) or line.startswith("Traceback")
    ]
    first = f"; first: {notable[0][:160]}" if notable else ""
    return f"log: {len(lines)} lines, {len(notable)} warnings/errors/tracebacks{first}"


# --- the consoles --------------------------------------------------------------------


class Console(asyncio.Protocol):
    """One SSE connection. Keeps each block (up to a blank line) with the time its last
    bytes arrived; counts `alarm` events as they come, parses them only afterwards."""

    def __init__(self, request: bytes) -> None:
        self.request = request
        self.transport: asyncio.Transport | None = None
        self.blocks: list[tuple[float, bytes]] = []
        self.alarms = 0
        self.hello = asyncio.Event()
        self.closed = asyncio.Event()
        self._buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport  # asyncio sets TCP_NODELAY on TCP sockets itself
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        at = time.perf_counter()
        buffer = self._buffer + data
        start = 0
        while (end := buffer.find(b"\n\n", start)) >= 0:
            block = buffer[start:end]
            self.blocks.append((at, block))
            if b"event: alarm" in block:
                self.alarms += 1
            elif b"event: hello" in block:
                self.hello.set()
            start = end + 2
        self._buffer = buffer[start:]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set()
        self.hello.set()  # whoever waits for it finds out

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def status_line(self) -> str:
        return self.blocks[0][1].split(b"\r\n", 1)[0].decode() if self.blocks else "nothing"

    def received_at(self) -> dict[str, float]:
        """Device → arrival of the first `alarm` event of its alarm, state `received`."""
        found: dict[str, float] = {}
        for at, block in self.blocks:
            event, data = _fields(block)
            if event != "alarm" or data is None:
                continue
            body = json.loads(data)
            device = body.get("device")
            if body.get("state") == "received" and device and device not in found:
                found[device] = at
        return found


def _fields(block: bytes) -> tuple[str | None, str | None]:
    """`event` and `data` of one SSE block (the chunked-encoding size lines and CRs
    between blocks are not SSE fields and are passed over)."""
    event = data = None
    for raw in block.split(b"\n"):
        line = raw.rstrip(b"\r")
        if line.startswith(b"event: "):
            event = line[7:].decode()
        elif line.startswith(b"data: "):
            data = line[6:].decode()
    return event, data


async def open_consoles(port: int, token: str, count: int) -> list[Console]:
    loop = asyncio.get_running_loop()
    request = (
        f"GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
    ).encode()
    consoles: list[Console] = []
    for first in range(0, count, CONNECT_BATCH):
        batch = [Console(request) for _ in range(first, min(count, first + CONNECT_BATCH))]
        await asyncio.gather(*(connect(loop, console, port) for console in batch))
        consoles += batch
        async with asyncio.timeout(STEP_TIMEOUT_S):
            await asyncio.gather(*(c.hello.wait() for c in batch))
    lost = [c for c in consoles if c.closed.is_set()]
    if lost:
        raise RuntimeError(f"{len(lost)} consoles were refused: {lost[0].status_line()}")
    return consoles


async def connect(loop: asyncio.AbstractEventLoop, console: Console, port: int) -> None:
    await loop.create_connection(lambda: console, "127.0.0.1", port)


async def all_have(consoles: Sequence[Console], alarms: int, within_s: float) -> bool:
    """Wait until every console counted `alarms` alarm events (or `within_s` passes)."""
    deadline = time.perf_counter() + within_s
    while any(c.alarms < alarms for c in consoles):
        if time.perf_counter() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


# --- one phase: N consoles, PRESSES presses --------------------------------------------


@dataclass
class Phase:
    consoles: int
    presses: list[Press]
    arrivals: list[dict[str, float]]  # per console: device → arrival
    centre: dict[int, float]  # alarm → first centre message
    connect_s: float
    followers: int
    portal_cpu_s: float
    client_cpu_s: float
    seconds: float
    machine_busy: float
    complete: bool
    delays: list[float] = field(default_factory=list)  # every (console, alarm) pair
    last: list[float] = field(default_factory=list)  # per alarm: the slowest console
    missing: int = 0

    def __post_init__(self) -> None:
        for press in self.presses:
            per_console = []
            for arrival in self.arrivals:
                at = arrival.get(press.device)
                if at is None:
                    self.missing += 1
                else:
                    per_console.append(at - press.sent)
            self.delays += per_console
            if len(per_console) == len(self.arrivals):
                self.last.append(max(per_console))

    def acks(self) -> list[float]:
        return [p.acked - p.sent for p in self.presses if p.acked is not None]

    def to_centre(self) -> list[float]:
        return [
            self.centre[p.alarm] - p.sent
            for p in self.presses
            if p.alarm is not None and p.alarm in self.centre
        ]


async def run_phase(
    rig: ConsoleRig, probe: AlarmProbe, token: str, count: int, devices: list[str]
) -> Phase:
    warm, pressing = devices[:WARMUP_PRESSES], devices[WARMUP_PRESSES:]
    began = time.perf_counter()
    consoles = await open_consoles(rig.portal_port, token, count)
    connect_s = time.perf_counter() - began
    try:
        for device in warm:
            probe.press(device, "warm")
        if not await all_have(consoles, len(warm), STEP_TIMEOUT_S):
            raise TimeoutError("the warm-up alarms did not reach every console")
        # After an event: the portal notices a closed stream only when it writes to it.
        followers = await asyncio.to_thread(rig.followers)
        await asyncio.sleep(0.5)
        portal_cpu, client_cpu = cpu_seconds(rig.portal_pid), time.thread_time()
        machine = machine_cpu()
        start = time.perf_counter()
        ids = []
        for i, device in enumerate(pressing):
            delay = start + i / RATE - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            ids.append(probe.press(device, "sse"))
        complete = await all_have(consoles, len(warm) + len(pressing), DRAIN_S)
        seconds = time.perf_counter() - start
        portal_cpu = cpu_seconds(rig.portal_pid) - portal_cpu
        client_cpu = time.thread_time() - client_cpu
        busy = machine_busy(machine)
        await asyncio.to_thread(probe.wait_acked, DRAIN_S)
    finally:
        for console in consoles:
            console.close()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(5):
            await asyncio.gather(*(c.closed.wait() for c in consoles))
    presses = probe.presses(ids)
    centre: dict[int, float] = {}
    for at, alarm, _ in sorted(probe.centre()):
        centre.setdefault(alarm, at)
    return Phase(
        consoles=count,
        presses=presses,
        arrivals=[c.received_at() for c in consoles],
        centre=centre,
        connect_s=connect_s,
        followers=followers,
        portal_cpu_s=portal_cpu,
        client_cpu_s=client_cpu,
        seconds=seconds,
        machine_busy=busy,
        complete=complete,
    )


# --- the report ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Figures:
    count: int
    p50: float
    p95: float
    p99: float
    max: float

    @classmethod
    def of(cls, samples: Sequence[float]) -> Figures:
        ordered = sorted(samples)
        if not ordered:
            return cls(0, math.nan, math.nan, math.nan, math.nan)
        p50, p95, p99 = (ms(rank(ordered, q)) for q in (0.50, 0.95, 0.99))
        return cls(len(ordered), p50, p95, p99, ms(ordered[-1]))


def report(title: str, rig: ConsoleRig, one: Phase, many: Phase, started: float) -> None:
    base, fan = Figures.of(one.delays), Figures.of(many.delays)
    base_last, fan_last = Figures.of(one.last), Figures.of(many.last)
    base_ack, fan_ack = Figures.of(one.acks()), Figures.of(many.acks())
    base_centre, fan_centre = Figures.of(one.to_centre()), Figures.of(many.to_centre())
    n = many.consoles
    server = "the `run` process" if rig.all_in_one else "the portal process"
    rows = [
        Row("publish → received ack p50", fan_ack.p50, baseline=base_ack.p50),
        Row("publish → centre MQTT message p50", fan_centre.p50, baseline=base_centre.p50),
        Row(f"publish → event, {n} consoles p50", fan.p50, baseline=base.p50),
        Row(f"publish → event, {n} consoles p95", fan.p95, baseline=base.p95),
        Row(f"publish → event, {n} consoles p99", fan.p99, baseline=base.p99, target=AIM_MS),
        Row(f"publish → event, {n} consoles max", fan.max, baseline=base.max),
        Row("publish → last console p50", fan_last.p50, baseline=base_last.p50),
        Row("publish → last console p99", fan_last.p99, baseline=base_last.p99, target=AIM_MS),
        Row(
            "(console, alarm) pairs delivered",
            fan.count,
            "",
            target=n * len(many.presses),
            higher_is_better=True,
        ),
    ]
    print_table(
        f"{title}: {PRESSES} new alarms at {RATE:g}/s to {n} SSE consoles "
        f"(baseline: 1 console, same processes)",
        rows,
        [
            *(_phase_note(phase, server) for phase in (one, many)),
            f"{server} CPU per console-event beyond the 1-console cost: "
            f"{_extra_cpu_us(one, many):.0f} µs",
            *rig.log_notes,
            f"ran {time.perf_counter() - started:.1f} s",
        ],
    )


def _phase_note(phase: Phase, server: str) -> str:
    deliveries = max(1, len(phase.delays))
    alarms = max(1, len(phase.presses))
    incomplete = "" if phase.complete else f", {phase.missing} MISSING after {DRAIN_S:g} s"
    return (
        f"{phase.consoles} console(s): connected + hello in {phase.connect_s:.2f} s, "
        f"portal counted {phase.followers} followers{incomplete}; CPU over "
        f"{phase.seconds:.1f} s: {server} {ms(phase.portal_cpu_s) / alarms:.1f} ms/alarm, "
        f"this client's event loop {phase.client_cpu_s / phase.seconds:.0%} of a core "
        f"({phase.client_cpu_s / deliveries * 1e6:.0f} µs/event received), "
        f"machine {phase.machine_busy:.0%} of {os.cpu_count()} cores"
    )


def _extra_cpu_us(one: Phase, many: Phase) -> float:
    extra = many.portal_cpu_s / max(1, len(many.presses)) - one.portal_cpu_s / max(
        1, len(one.presses)
    )
    return extra / max(1, many.consoles - one.consoles) * 1e6


def measure(title: str, all_in_one: bool, started: float) -> None:
    per_phase = WARMUP_PRESSES + PRESSES
    devices = device_ids(per_phase * len(CONSOLES))
    phases: list[Phase] = []
    name = "sse_fanout-" + ("all_in_one" if all_in_one else "split")
    rig = ConsoleRig(name, devices, all_in_one)
    with rig:
        token = rig.sign_in()
        with AlarmProbe(rig.mqtt_port) as probe:
            for index, count in enumerate(CONSOLES):
                mine = devices[index * per_phase : (index + 1) * per_phase]
                phases.append(asyncio.run(run_phase(rig, probe, token, count, mine)))
    report(title, rig, phases[0], phases[-1], started)


def main() -> None:
    started = time.perf_counter()
    measure("SSE fan-out, all-in-one (`xueliang run`)", True, started)
    print()
    measure("SSE fan-out, split (`xueliang bridge` + `xueliang portal`)", False, started)


if __name__ == "__main__":
    main()
