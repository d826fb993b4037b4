"""The pictures of the moment: when an alarm is raised, a snapshot of every camera
of its village is taken and kept with the alarm (files under the data directory),
so the centre sees what the cameras showed then, not only what they show now."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import shutil
import time
from pathlib import Path

from video_relay.relay import Relay
from video_relay.snapshots import SnapshotCache
from xueliang import cameras
from xueliang.alarm_feed import AlarmFeed, Change
from xueliang.errors import Busy, InvalidInput

log = logging.getLogger(__name__)

READY_WAIT_S = 15.0
RETENTION_DAYS = 90
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class AlarmSnapshots:
    def __init__(self, folder: Path, relay: Relay, cache: SnapshotCache, feed: AlarmFeed) -> None:
        self.folder = folder
        self.relay = relay
        self.cache = cache
        self.feed = feed
        self.taken = 0

    def path(self, alarm: int, camera: str) -> Path | None:
        """The stored snapshot of `camera` for `alarm`, if one was taken."""
        if not _NAME.fullmatch(camera):
            return None
        found = self.folder / str(alarm) / f"{camera}.jpg"
        return found if found.is_file() else None

    def cameras(self, alarm: int) -> list[str]:
        folder = self.folder / str(alarm)
        return sorted(p.stem for p in folder.glob("*.jpg")) if folder.is_dir() else []

    async def run(self) -> None:
        """Follow the alarm feed; for each new alarm, photograph its village. A burst
        that overflows the queue costs those pictures, never the following ones."""
        await self.feed.ready.wait()
        pending: set[asyncio.Task[None]] = set()
        try:
            while True:
                await self._follow(pending)
                log.warning("alarm snapshots fell behind a burst of alarms; following on")
        finally:
            for task in pending:
                task.cancel()

    async def _follow(self, pending: set[asyncio.Task[None]]) -> None:
        subscription = self.feed.subscribe()
        try:
            while True:
                item = await subscription.queue.get()
                if item == "end":
                    raise asyncio.CancelledError  # shutting down
                if subscription.lagging.is_set():
                    return
                if isinstance(item, Change) and "raised" in json.loads(item.data)["changes"]:
                    task = asyncio.create_task(self._photograph(item))
                    pending.add(task)
                    task.add_done_callback(pending.discard)
        finally:
            self.feed.unsubscribe(subscription)

    def sweep(self, keep_days: int = RETENTION_DAYS) -> int:
        """Delete the pictures of alarms older than `keep_days` (they show people)."""
        if not self.folder.is_dir():
            return 0
        cutoff = time.time() - keep_days * 86_400
        removed = 0
        for folder in self.folder.iterdir():
            if folder.is_dir() and folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
        return removed

    async def _photograph(self, change: Change) -> None:
        payload = json.loads(change.data)
        if payload["kind"] == "test":
            return  # a test press photographs nobody
        await asyncio.gather(*(self._one(change.alarm, c) for c in payload["cameras"]))

    async def _one(self, alarm: int, camera_id: str) -> None:
        try:
            await self._take(alarm, camera_id)
        except Exception:  # one camera's trouble never stops the others or the task
            log.exception("alarm %d: snapshot of camera %s failed", alarm, camera_id)

    async def _take(self, alarm: int, camera_id: str) -> None:
        try:
            async with self.feed.db.read() as conn:
                camera = await cameras.find(conn, camera_id)
            if camera is None:
                return
            producer = self.relay.producer(camera)
            async with asyncio.timeout(READY_WAIT_S):
                await producer.ready.wait()
            jpeg = await self.cache.get(producer.key, producer.live, max_age_s=0.5)
        except (Busy, InvalidInput, TimeoutError) as e:
            log.warning("alarm %d: no snapshot of camera %s (%s)", alarm, camera_id, e)
            return
        if jpeg is None:
            return
        folder = self.folder / str(alarm)
        await asyncio.to_thread(_write, folder, f"{camera_id}.jpg", jpeg)
        self.taken += 1


def _write(folder: Path, name: str, data: bytes) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f".{name}.tmp"
    temporary.write_bytes(data)
    with contextlib.suppress(OSError):
        os.chmod(temporary, 0o640)
    temporary.replace(folder / name)
