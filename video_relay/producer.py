"""One producer per camera and profile, shared by every viewer.

The relay keeps its own playlist: ffmpeg writes HLS into a folder of its own (the
camera's, or the "offline" slate's), and each finished segment is linked into the
producer's window under the next sequence number. So a camera that fails is replaced
by the slate without a gap (boxes keep playing), the camera is retried in the
background while the slate plays, and the switch back is seamless: players see
`#EXT-X-DISCONTINUITY`, never a 404 or a restarted sequence.

A producer starts on the first request, and stops `idle_s` after the last request
while nobody holds a continuous stream open. A camera ffmpeg that exits, or writes no
new segment for `stall_s` (a hung camera, a SIGSTOPped ffmpeg), is stopped and
restarted with the pacing of `video_relay.supervisor.Pacing`."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import os
import re
import shutil
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from video_relay.masks import render_mask_png
from video_relay.presets import Preset, hls_argv, slate_argv
from video_relay.supervisor import Ffmpeg, Pacing
from xueliang.cameras import Camera

log = logging.getLogger(__name__)

State = Literal["starting", "live", "offline", "stopped"]
WINDOW = 6  # segments in the served playlist
KEEP = 12  # segments kept on disk (a slow player may still fetch one that just left)
TICK_S = 0.1
_EXTINF = re.compile(r"#EXTINF:([0-9.]+),\s*\n(\S+)")


@dataclass(frozen=True, slots=True)
class Segment:
    seq: int
    path: Path
    duration: float
    discontinuity: bool  # a different source than the segment before


@dataclass
class _Source:
    """One ffmpeg writing HLS into a folder of its own."""

    kind: Literal["camera", "slate"]
    folder: Path
    ffmpeg: Ffmpeg
    taken: set[str]
    last_new: float
    produced: int = 0


class Producer:
    def __init__(
        self,
        camera: Camera,
        preset: Preset,
        folder: Path,
        ffmpeg: str,
        *,
        idle_s: float = 30.0,
        first_wait_s: float = 4.0,
        start_timeout_s: float = 12.0,
        stall_s: float | None = None,
        on_state: Callable[[Producer], None] | None = None,
    ) -> None:
        self.camera = camera
        self.preset = preset
        self.folder = folder
        self.live = folder / "live"
        self.ffmpeg = ffmpeg
        self.idle_s = idle_s
        self.first_wait_s = first_wait_s
        self.start_timeout_s = start_timeout_s
        self.stall_s = stall_s if stall_s is not None else max(5.0, 4 * preset.segment_s)
        self.state: State = "starting"
        self.segments: deque[Segment] = deque()
        self.discontinuities_dropped = 0
        self.restarts = 0
        self.viewers = 0  # continuous streams held open (stream.ts, mjpeg)
        self.last_access = time.monotonic()
        self.ready = asyncio.Event()
        self.pacing = Pacing()
        self._on_state = on_state
        self._new_segment = asyncio.Event()
        self._seq = itertools.count()
        self._attempts = itertools.count()
        self._last_kind: str | None = None
        self._stopping = False
        self._served: tuple[int, str] | None = None

    @property
    def key(self) -> str:
        return f"{self.camera.id}/{self.preset.name}"

    # --- viewers -----------------------------------------------------------------

    def touch(self) -> None:
        self.last_access = time.monotonic()

    def idle(self) -> bool:
        if self._stopping:
            return True
        return self.viewers == 0 and time.monotonic() - self.last_access > self.idle_s

    def stop(self) -> None:
        """Stop soon (shutdown): the run loop ends as if idle."""
        self._stopping = True

    async def next_segment(self, after: int | None) -> Segment | None:
        """The first segment after sequence number `after` (the newest when None),
        waiting for it; None once the producer stopped."""
        while self.state != "stopped":
            if after is None and self.segments:
                return self.segments[-1]
            for segment in self.segments:
                if after is not None and segment.seq > after:
                    return segment
            event = self._new_segment
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await event.wait()
        return None

    def segment(self, seq: int) -> Segment | None:
        for segment in self.segments:
            if segment.seq == seq:
                return segment
        return None

    def playlist_for(self, suffix: str) -> str:
        """The playlist with segment URLs `seg/{n}.ts{suffix}`; built once per new
        segment and shared by every viewer (only their signatures differ)."""
        newest = self.segments[-1].seq if self.segments else -1
        if self._served is None or self._served[0] != newest:
            self._served = (newest, self.playlist(lambda seq: f"seg/{seq}.ts\x00"))
        return self._served[1].replace("\x00", suffix)

    def playlist(self, url_of: Callable[[int], str]) -> str:
        """The HLS playlist of the window: version 3, MPEG-TS, continuous numbering."""
        window = list(self.segments)[-WINDOW:]
        target = max((math.ceil(s.duration) for s in window), default=1)
        lines = [
            "#EXTM3U",
            "#EXT-X-VERSION:3",
            f"#EXT-X-TARGETDURATION:{target}",
            f"#EXT-X-MEDIA-SEQUENCE:{window[0].seq if window else 0}",
            f"#EXT-X-DISCONTINUITY-SEQUENCE:{self._discontinuity_sequence(window)}",
        ]
        for segment in window:
            if segment.discontinuity and segment is not window[0]:
                lines.append("#EXT-X-DISCONTINUITY")
            lines += [f"#EXTINF:{segment.duration:.3f},", url_of(segment.seq)]
        return "\n".join(lines) + "\n"

    def _discontinuity_sequence(self, window: Sequence[Segment]) -> int:
        before = [s for s in self.segments if window and s.seq < window[0].seq]
        first_counts = 1 if window and window[0].discontinuity else 0
        return self.discontinuities_dropped + sum(s.discontinuity for s in before) + first_counts

    # --- running -----------------------------------------------------------------

    async def run(self) -> None:
        """Produce until idle; the caller removes the producer afterwards."""
        shutil.rmtree(self.folder, ignore_errors=True)
        self.live.mkdir(parents=True)
        mask_png = None
        if any(m.points for m in self.camera.masks):
            mask_png = self.folder / "mask.png"
            await asyncio.to_thread(
                render_mask_png, self.camera.masks, self.preset.width, self.preset.height, mask_png
            )
        slate: _Source | None = None
        camera: _Source | None = None
        try:
            while not self.idle():
                camera = await self._start("camera", mask_png)
                reason = None
                while reason is None:
                    await asyncio.sleep(TICK_S)
                    if self.idle():
                        reason = "idle"
                        break
                    if self._harvest(camera) and slate is not None:
                        await self._end(slate)  # the camera is back: drop the slate
                        slate = None
                    if slate is not None:
                        self._harvest(slate)
                    reason = self._trouble(camera)
                    if reason is None and slate is None and self._late(camera):
                        slate = await self._start("slate", None)  # something to play meanwhile
                if reason == "idle":
                    await self._end(camera)
                    break
                camera.ffmpeg.dump(reason)
                ran_for = time.monotonic() - camera.ffmpeg.started_at
                await self._end(camera)
                self.restarts += 1
                self._set_state("offline")
                if slate is None:
                    slate = await self._start("slate", None)
                pause = self.pacing.failed(ran_for if camera.produced else 0.0)
                deadline = time.monotonic() + pause
                while time.monotonic() < deadline and not self.idle():
                    await asyncio.sleep(TICK_S)
                    self._harvest(slate)
                    if self._trouble(slate) is not None:
                        slate.ffmpeg.dump("(slate) ended")
                        await self._end(slate)
                        slate = await self._start("slate", None)
        finally:
            for source in (camera, slate):  # whatever ended the loop, no ffmpeg outlives it
                if source is not None and source.ffmpeg.running:
                    await source.ffmpeg.stop()
            self._set_state("stopped")
            self._new_segment.set()
            shutil.rmtree(self.folder, ignore_errors=True)

    async def _start(self, kind: Literal["camera", "slate"], mask_png: Path | None) -> _Source:
        folder = self.folder / f"{kind}-{next(self._attempts)}"
        folder.mkdir()
        if kind == "camera":
            argv = hls_argv(
                self.ffmpeg, source_url=self.camera.source_url, masks=self.camera.masks,
                preset=self.preset, out_dir=folder, mask_png=mask_png,
            )  # fmt: skip
        else:
            argv = slate_argv(self.ffmpeg, preset=self.preset, out_dir=folder, start_number=0)
        process = Ffmpeg(f"{self.key} ({kind})")
        await process.start(argv)
        return _Source(kind, folder, process, set(), time.monotonic())

    async def _end(self, source: _Source) -> None:
        await source.ffmpeg.stop()
        shutil.rmtree(source.folder, ignore_errors=True)

    def _late(self, source: _Source) -> bool:
        return not source.produced and time.monotonic() - source.last_new > self.first_wait_s

    def _trouble(self, source: _Source) -> str | None:
        if not source.ffmpeg.running:
            return (
                f"exited with status {source.ffmpeg.process and source.ffmpeg.process.returncode}"
            )
        quiet = time.monotonic() - source.last_new
        if source.produced and quiet > self.stall_s:
            return f"stalled (no new segment for {quiet:.1f} s)"
        if not source.produced and quiet > self.start_timeout_s:
            return f"produced nothing within {self.start_timeout_s:g} s"
        return None

    def _harvest(self, source: _Source) -> bool:
        """Take the source's newly finished segments into the window."""
        try:
            listed = (source.folder / "index.m3u8").read_text()
        except (FileNotFoundError, UnicodeDecodeError):
            return False
        took = False
        entries = _EXTINF.findall(listed)
        for duration, name in entries:
            if name in source.taken or "/" in name:
                continue
            source.taken.add(name)
            self._publish(source, source.folder / name, float(duration))
            took = True
        source.taken &= {name for _duration, name in entries}  # bounded by the listing
        return took

    def _publish(self, source: _Source, path: Path, duration: float) -> None:
        seq = next(self._seq)
        target = self.live / f"s{seq}.ts"
        try:
            os.link(path, target)
        except FileNotFoundError:
            return  # ffmpeg already deleted it: nothing to show
        except OSError:
            shutil.copyfile(path, target)
        discontinuity = self._last_kind is not None and (
            source.kind != self._last_kind or source.produced == 0
        )
        self._last_kind = source.kind
        source.produced += 1
        source.last_new = time.monotonic()
        self.segments.append(Segment(seq, target, duration, discontinuity))
        while len(self.segments) > KEEP:
            old = self.segments.popleft()
            self.discontinuities_dropped += old.discontinuity
            old.path.unlink(missing_ok=True)
        self._write_playlist()
        if source.kind == "camera":
            if source.produced > 3:
                self.pacing.succeeded()  # it works again: the next failure paces from 1 s
            self._set_state("live")
        elif self.state == "starting":
            self._set_state("offline")
        self.ready.set()
        event, self._new_segment = self._new_segment, asyncio.Event()
        event.set()

    def _write_playlist(self) -> None:
        """The window as a file too, with plain names (for snapshots of the newest)."""
        temporary = self.live / "index.m3u8.tmp"
        temporary.write_text(self.playlist(lambda seq: f"s{seq}.ts"))
        temporary.replace(self.live / "index.m3u8")

    def _set_state(self, state: State) -> None:
        if state != self.state:
            log.info("camera %s: %s → %s", self.key, self.state, state)
            self.state = state
            if self._on_state is not None:
                self._on_state(self)
