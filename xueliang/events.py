"""The event bus: how every process learns that alarms changed somewhere.

The core knows only this interface; the MQTT implementation lives in `mqtt_bridge`
and is handed to the portal by the CLI entrance, so any number of portal processes
see the changes made by the bridge or by each other (changes made in the same
process arrive through `AlarmService.listeners`). A wake-up carries no data: the
database is the single source of truth, read by `xueliang.alarm_feed`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

Wake = Callable[[], None]


class EventBus(Protocol):
    """Calls every subscriber soon after an alarm changed in any process."""

    def subscribe(self, wake: Wake) -> None: ...
