"""Telemetry never delays alarms: the alarm p99 (publish → `received`) at 50 alarms/s
while another process floods 5,000 heartbeats/s (QoS 0) from 2,000 other registered
devices, against the idle p99 measured in the same run. Aim: under 2× idle."""

from __future__ import annotations

import multiprocessing
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from bench.alarm_rig import CpuMeter, Rig, Usage, device_ids, rejected
from bench.figures import Row, Stats, ms, paced, print_table
from bench.mqtt_clients import AlarmProbe, Client, nodelay

RATE = 50.0  # alarms per second
PHASE_S = 12.0
# 100 alarm devices keep each at ~12 presses in the run, inside the default flood limit.
ALARM_DEVICES = 100
HEARTBEAT_DEVICES = 2000
HEARTBEAT_RATE = 5000.0
SETTLE_S = 3.0  # heartbeats alone flow this long before alarms are timed again
AIM_RATIO = 2.0
BROKER_SENT = "$SYS/broker/publish/messages/sent"


def flood(port: int, devices: list[str], rate: float, seconds: float, report: Connection) -> None:
    """Publish heartbeats round robin over `devices` at `rate` per second for `seconds`
    (runs in its own process, single-threaded: paho writes as it publishes); report
    "ready" once connected, then (messages sent, seconds taken)."""
    client = paho.Client(CallbackAPIVersion.VERSION2, "bench-heartbeats", protocol=paho.MQTTv311)
    client.on_socket_open = nodelay
    client.connect("127.0.0.1", port, keepalive=30)
    deadline = time.monotonic() + 10
    while not client.is_connected():
        if time.monotonic() > deadline:
            report.send("not connected")
            return
        client.loop(timeout=0.05)
    report.send("ready")
    topics = [f"xl/dev/{device}/heartbeat" for device in devices]
    total = int(rate * seconds)
    sent = 0
    start = time.perf_counter()
    while sent < total:
        due = min(total, int((time.perf_counter() - start) * rate) + 1)
        while sent < due:
            client.publish(topics[sent % len(topics)], b'{"battery": 80}', qos=0)
            sent += 1
        client.loop(timeout=0.002)  # pings, and whatever the socket did not take yet
    elapsed = time.perf_counter() - start
    client.disconnect()
    report.send((sent, elapsed))


class BrokerCounter:
    """Mosquitto's count of PUBLISH packets it sent (`$SYS`, every second)."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, int]] = []
        self._lock = threading.Lock()

    def heard(self, _topic: str, payload: bytes, at: float) -> None:
        with self._lock:
            self.samples.append((at, int(payload)))

    def rate(self, start: float, end: float) -> float:
        with self._lock:
            inside = [(t, n) for t, n in self.samples if start <= t <= end]
        if len(inside) < 2:
            return float("nan")
        (t0, n0), (t1, n1) = inside[0], inside[-1]
        return (n1 - n0) / (t1 - t0)


@dataclass(frozen=True, slots=True)
class Phase:
    delays: Stats
    usage: Usage
    start: float
    end: float


def timed_phase(probe: AlarmProbe, rig: Rig, devices: list[str], tag: str) -> Phase:
    """Alarms at RATE for PHASE_S, round robin over `devices`."""
    count = int(RATE * PHASE_S)
    meter = CpuMeter(rig)
    start = time.perf_counter()
    ids = [probe.press(devices[i % len(devices)], tag) for i in paced(count, RATE)]
    usage = meter.read()
    probe.wait_acked(10)
    delays = [p.acked - p.sent for p in probe.presses(ids) if p.acked is not None]
    return Phase(Stats.of(delays), usage, start, start + usage.seconds)


def run_flood(
    rig: Rig, probe: AlarmProbe, devices: list[str], pressing: list[str]
) -> tuple[Phase, Usage, float]:
    """Start the heartbeat process, let it settle, time a phase of alarms; return it,
    the CPU used by heartbeats alone, and the heartbeat rate achieved."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    seconds = SETTLE_S + PHASE_S + 1.0
    flooder = context.Process(
        target=flood,
        args=(rig.mqtt_port, devices, HEARTBEAT_RATE, seconds, sender),
        name="heartbeat-flood",
    )
    flooder.start()
    try:
        if not receiver.poll(20) or receiver.recv() != "ready":
            raise TimeoutError("the heartbeat publisher did not connect")
        meter = CpuMeter(rig)
        time.sleep(SETTLE_S)
        alone = meter.read()
        loaded = timed_phase(probe, rig, pressing, "loaded")
        if not receiver.poll(seconds + 10):
            raise TimeoutError("the heartbeat publisher did not finish")
        sent, elapsed = receiver.recv()
    finally:
        flooder.join(1)  # it has finished, unless something failed
        if flooder.is_alive():
            flooder.terminate()
            flooder.join(5)
    return loaded, alone, sent / elapsed


def main() -> None:
    started = time.perf_counter()
    alarm_devices = device_ids(ALARM_DEVICES + 1)
    warm, pressing = alarm_devices[-1], alarm_devices[:-1]
    beating = device_ids(HEARTBEAT_DEVICES, first=ALARM_DEVICES + 2)
    counter = BrokerCounter()
    with (
        Rig("alarm_isolation", alarm_devices + beating, "sys_interval 1") as rig,
        Client(rig.mqtt_port, "bench-sys", counter.heard, [(BROKER_SENT, 0)]),
        AlarmProbe(rig.mqtt_port) as probe,
    ):
        for _ in range(5):
            probe.press(warm, "warm")
            if not probe.wait_acked(10):
                raise TimeoutError("no `received` for a warm-up alarm")
        idle = timed_phase(probe, rig, pressing, "idle")
        loaded, alone, achieved = run_flood(rig, probe, beating, pressing)
        delivered = counter.rate(loaded.start, loaded.end)
        samples = rig.metrics()
    quiet, busy = idle.delays, loaded.delays
    total = 2 * int(RATE * PHASE_S)
    rows = [
        Row("idle: publish → received p50", ms(quiet.p50)),
        Row("idle: publish → received p99", ms(quiet.p99)),
        Row("heartbeats: publish → received p50", ms(busy.p50), baseline=ms(quiet.p50)),
        Row(
            "heartbeats: publish → received p99",
            ms(busy.p99),
            baseline=ms(quiet.p99),
            issue=AIM_RATIO * ms(quiet.p99),
            target=AIM_RATIO * ms(quiet.p99),
        ),
        Row("heartbeats: publish → received max", ms(busy.max), baseline=ms(quiet.max)),
        Row(
            "heartbeats published per second",
            achieved,
            "/s",
            HEARTBEAT_RATE,
            0.95 * HEARTBEAT_RATE,
            higher_is_better=True,
        ),
        Row("alarms answered received", quiet.count + busy.count, "", total, total, total, True),
    ]
    print_table(
        f"alarm isolation: {RATE:g} alarms/s from {ALARM_DEVICES} devices, idle vs "
        f"{HEARTBEAT_RATE:g} heartbeats/s from {HEARTBEAT_DEVICES} others ({PHASE_S:g} s each)",
        rows,
        [
            f"aim: loaded p99 ≤ {AIM_RATIO:g}× idle p99 (issue and target alike)",
            f"Mosquitto sent {delivered:.0f} publishes/s while loaded (heartbeats to the bridge"
            " plus the alarm traffic)",
            f"CPU, alarms alone: {idle.usage}",
            f"CPU, heartbeats alone: {alone}",
            f"CPU, both: {loaded.usage}",
            f"bridge rejected: {rejected(samples) or 'nothing'}",
            *rig.log_notes,
            f"ran {time.perf_counter() - started:.1f} s",
        ],
    )


if __name__ == "__main__":
    main()
