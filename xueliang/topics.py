"""The MQTT topics of the public contract, built and parsed in one place."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

DeviceChannel = Literal["alarm", "heartbeat", "status"]
_ID = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"


@dataclass(frozen=True, slots=True)
class Topics:
    """Every topic under one prefix (`XL_TOPIC_PREFIX`, default `xl`)."""

    prefix: str = "xl"

    def device(self, device: str, channel: str) -> str:
        return f"{self.prefix}/dev/{device}/{channel}"

    def ack(self, device: str) -> str:
        return self.device(device, "ack")

    def centre_alarm(self, town: str) -> str:
        return f"{self.prefix}/centre/{town}/alarm"

    def centre_command(self, town: str) -> str:
        return f"{self.prefix}/centre/{town}/command"

    @property
    def bridge_status(self) -> str:
        return f"{self.prefix}/bridge/status"

    def alarm_subscriptions(self) -> list[tuple[str, int]]:
        """What the bridge's alarm connection listens to, with the QoS of each."""
        return [(f"{self.prefix}/dev/+/alarm", 1), (f"{self.prefix}/centre/+/command", 1)]

    def telemetry_subscriptions(self) -> list[tuple[str, int]]:
        """Liveness, on a connection of its own so it never queues ahead of alarms."""
        return [(f"{self.prefix}/dev/+/status", 1), (f"{self.prefix}/dev/+/heartbeat", 0)]

    def parse_device(self, topic: str) -> tuple[str, DeviceChannel] | None:
        """`(device, channel)` for a device topic with a valid id, else None."""
        match = re.fullmatch(
            rf"{re.escape(self.prefix)}/dev/({_ID})/(alarm|heartbeat|status)", topic
        )
        if match is None:
            return None
        channel: DeviceChannel = match.group(2)  # type: ignore[assignment]
        return match.group(1), channel

    def parse_command(self, topic: str) -> str | None:
        """The town (or county) id of a centre command topic, else None."""
        match = re.fullmatch(rf"{re.escape(self.prefix)}/centre/({_ID})/command", topic)
        return match.group(1) if match else None
