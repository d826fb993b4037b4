"""The bridge's Prometheus metrics, registered on the application's registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class BridgeMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.alarms = Gauge("xl_alarms", "Alarms stored, by state.", ["state"], registry=registry)
        self.ingest_seconds = Histogram(
            "xl_alarm_ingest_seconds",
            "From an alarm message's arrival to its `received` ack being sent (stored first).",
            registry=registry,
            buckets=(0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.outbox_depth = Gauge(
            "xl_outbox_depth",
            "Messages waiting to be published, by destination broker.",
            ["destination"],
            registry=registry,
        )
        self.rejected = Counter(
            "xl_bridge_rejected",
            "MQTT messages not acted on, by reason (invalid payload, bad topic, flood…).",
            ["reason"],
            registry=registry,
        )
        self.devices_online = Gauge(
            "xl_devices_online", "Devices currently online.", registry=registry
        )
        self.connected = Gauge(
            "xl_bridge_connected",
            "1 while the bridge is connected to the broker.",
            ["broker"],
            registry=registry,
        )
        self.escalated = Counter(
            "xl_alarms_escalated", "Alarms escalated to the county.", registry=registry
        )
        self.store_retries = Counter(
            "xl_alarm_store_retries",
            "Alarm batches that could not be stored at once and were retried.",
            registry=registry,
        )
        self.supervision = Counter(
            "xl_supervision_events",
            "Device supervision events, by kind (offline, online, low_battery).",
            ["kind"],
            registry=registry,
        )
