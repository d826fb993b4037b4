"""The relay: one producer per camera and profile, started on demand, removed when
idle, with a cap on concurrent transcodes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client import Counter as MetricCounter

from video_relay.presets import PRESETS
from video_relay.producer import Producer
from xueliang.cameras import Camera
from xueliang.errors import Busy, InvalidInput

log = logging.getLogger(__name__)

STOP_WAIT_S = 10.0


class Relay:
    def __init__(
        self,
        root: Path,
        ffmpeg: str,
        *,
        idle_s: float,
        max_transcodes: int,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.root = root
        self.ffmpeg = ffmpeg
        self.idle_s = idle_s
        self.max_transcodes = max_transcodes
        self.producers: dict[str, Producer] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._closing = False
        registry = registry or CollectorRegistry()
        self.busy_refusals = MetricCounter(
            "xl_video_busy", "Viewers refused because every transcode slot was taken.",
            registry=registry,
        )  # fmt: skip
        self.restarts = MetricCounter(
            "xl_video_restarts", "Camera ffmpeg restarts (exits and stalls).", registry=registry
        )
        self.states = Gauge(
            "xl_video_cameras", "Running camera producers by state.", ["state"],
            registry=registry,
        )  # fmt: skip

    def producer(self, camera: Camera, profile: str | None = None) -> Producer:
        """The running producer of `camera` in `profile` (its own by default), started
        if needed; raises Busy when a new transcode would exceed the cap."""
        name = profile or camera.profile
        preset = PRESETS.get(name)
        if preset is None:
            raise InvalidInput("profile", "must be one of " + ", ".join(PRESETS))
        if name == "copy" and camera.masks:
            raise InvalidInput("profile", "a camera with privacy masks is never remuxed")
        key = f"{camera.id}/{name}"
        running = self.producers.get(key)
        if running is not None:
            running.touch()
            return running
        if self._closing:
            raise Busy("the relay is shutting down")
        if preset.transcode and self.transcoding() >= self.max_transcodes:
            self.busy_refusals.inc()
            raise Busy(f"all {self.max_transcodes} transcode slots are in use")
        producer = Producer(
            camera, preset, self.root / camera.id / name, self.ffmpeg, idle_s=self.idle_s,
            on_state=self._state_changed,
        )  # fmt: skip
        self.producers[key] = producer
        self._tasks[key] = asyncio.create_task(self._run(key, producer), name=f"video {key}")
        return producer

    def running(self, camera_id: str, profile: str) -> Producer | None:
        return self.producers.get(f"{camera_id}/{profile}")

    def transcoding(self) -> int:
        return sum(1 for p in self.producers.values() if p.preset.transcode)

    async def _run(self, key: str, producer: Producer) -> None:
        try:
            await producer.run()
        except Exception:
            log.exception("camera %s: producer failed", key)
        finally:
            self.producers.pop(key, None)
            self._tasks.pop(key, None)
            self.restarts.inc(producer.restarts)
            self._state_changed(producer)

    def _state_changed(self, _producer: Producer) -> None:
        counts = Counter(p.state for p in self.producers.values())
        for state in ("starting", "live", "offline"):
            self.states.labels(state).set(counts[state])

    def health(self) -> dict[str, Any]:
        states = Counter(p.state for p in self.producers.values())
        return {
            "producers": len(self.producers),
            "transcoding": self.transcoding(),
            "max_transcodes": self.max_transcodes,
            "cameras": {key: p.state for key, p in sorted(self.producers.items())},
            "states": dict(states),
        }

    async def close(self) -> None:
        """Stop every producer (and its ffmpeg) before the process exits."""
        self._closing = True
        for producer in self.producers.values():
            producer.stop()
        tasks = list(self._tasks.values())
        if tasks:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(STOP_WAIT_S):
                    await asyncio.gather(*tasks, return_exceptions=True)
