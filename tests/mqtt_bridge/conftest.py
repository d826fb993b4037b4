"""A bridge running in the test's event loop against a real Mosquitto and a copy of
the seeded demo county."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from mqtt_bridge.bridge import Bridge
from mqtt_bridge.metrics import BridgeMetrics
from tests.mosquitto import Mosquitto
from xueliang.alarms import AlarmService
from xueliang.config import Settings
from xueliang.storage import Database, upgrade


@dataclass
class BridgeRun:
    bridge: Bridge
    db: Database
    service: AlarmService
    registry: CollectorRegistry
    task: asyncio.Task[None]

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    async def stop(self) -> None:
        if not self.task.done():
            await self.bridge.stop()
            self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        await self.db.close()


StartBridge = Callable[..., Awaitable[BridgeRun]]


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


@pytest.fixture
async def start_bridge(demo_dir: Path, mosquitto: Mosquitto) -> AsyncIterator[StartBridge]:
    """Start a bridge (settings as nested dicts override the defaults); every bridge
    started is stopped after the test."""
    runs: list[BridgeRun] = []

    async def start(**overrides: Any) -> BridgeRun:
        base = {
            "data_dir": str(demo_dir),
            "mqtt": {"url": mosquitto.url},
            "bridge": {"supervision_check_s": 0.2, "heartbeat_flush_s": 0.1},
        }
        settings = Settings.model_validate(_merge(base, overrides))
        db = Database(settings.database_url)
        await upgrade(db)
        service = AlarmService.from_settings(db, settings)
        registry = CollectorRegistry()
        bridge = Bridge(settings, db, service, BridgeMetrics(registry))
        task = asyncio.create_task(bridge.run())
        run = BridgeRun(bridge, db, service, registry, task)
        runs.append(run)
        async with asyncio.timeout(10):
            await bridge.client.connected.wait()
            await bridge.telemetry_ready.wait()
        return run

    yield start
    for run in runs:
        await run.stop()
