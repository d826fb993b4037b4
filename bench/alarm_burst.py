"""2,000 buttons pressed at once: one client publishes one alarm (QoS 1) for each of
2,000 registered devices as fast as it can; how long until every one is answered
`received`, and is any lost (acks counted by message id, then rows counted in the
bridge's SQLite file once it has stopped)? Baseline from the same run: 2,000 QoS 1
messages from one paho client to another through the same Mosquitto.
Aims: under 5 s (issue), under 1 s (project target)."""

from __future__ import annotations

import time

from bench.alarm_rig import Rig, device_ids, ingest_shares, rejected
from bench.figures import Row, Stats, ms, print_table
from bench.mqtt_clients import AlarmProbe, mosquitto_round_trip

DEVICES = 2000
TIMEOUT_S = 30.0
ISSUE_S = 5.0
TARGET_S = 1.0


def main() -> None:
    started = time.perf_counter()
    devices = device_ids(DEVICES)
    with Rig("alarm_burst", devices) as rig:
        raw, raw_span = mosquitto_round_trip(rig.mqtt_port, DEVICES, None)
        with AlarmProbe(rig.mqtt_port) as probe:
            first = time.perf_counter()
            ids = [probe.press(device, "burst") for device in devices]
            published = time.perf_counter() - first
            probe.wait_acked(TIMEOUT_S)
            presses = probe.presses(ids)
        answered = [p.acked for p in presses if p.acked is not None]
        total = max(answered) - first if answered else float("nan")
        samples = rig.metrics()
        rig.stop_bridge()
        stored = rig.count("SELECT count(*) FROM alarm_messages")
        alarms = rig.count("SELECT count(*) FROM alarms")
    delays = Stats.of([p.acked - p.sent for p in presses if p.acked is not None])
    rows = [
        Row(f"Mosquitto: {len(raw)} QoS 1 msgs pub → all received", raw_span, "s"),
        Row("all 2000 answered received", total, "s", raw_span, ISSUE_S, TARGET_S),
        Row("presses answered received", len(answered), "", DEVICES, DEVICES, DEVICES, True),
        Row("rows in alarm_messages", stored, "", DEVICES, DEVICES, DEVICES, True),
        Row("one press: publish → received p50", ms(delays.p50), "ms"),
        Row("one press: publish → received p99", ms(delays.p99), "ms"),
    ]
    print_table(
        f"alarm burst: {DEVICES} devices press at once (one publisher, QoS 1)",
        rows,
        [
            f"publishing the {DEVICES} alarms took {published:.2f} s; rows in alarms: {alarms}",
            f"throughput: {len(answered) / total:.0f} alarms/s answered",
            ingest_shares(samples),
            f"bridge rejected: {rejected(samples) or 'nothing'}",
            *rig.log_notes,
            f"ran {time.perf_counter() - started:.1f} s",
        ],
    )


if __name__ == "__main__":
    main()
