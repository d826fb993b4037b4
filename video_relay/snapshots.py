"""Still images from the relay's HLS output: the first (key)frame of the newest complete
segment, as JPEG, decoded off the event loop and shared by every viewer of a camera."""

from __future__ import annotations

import asyncio
import functools
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import cv2
import numpy as np
import numpy.typing as npt

Frame = npt.NDArray[np.uint8]

PLAYLIST = "index.m3u8"
# ffmpeg rewrites its playlist every second; a hostile or broken one is not read whole.
_PLAYLIST_MAX_BYTES = 1 << 20
_SEGMENT_SUFFIXES = frozenset({".ts"})
_MAX_OFFLINE_SIDE = 8192
_BACKGROUND = (24, 24, 24)
_FOREGROUND = (150, 150, 150)


def newest_segment(out_dir: Path) -> Path | None:
    """The newest segment listed in `out_dir/index.m3u8` that exists, or None."""
    try:
        # ffmpeg replaces the playlist by rename, so one open() sees one whole version.
        with (out_dir / PLAYLIST).open("rb") as playlist:
            text = playlist.read(_PLAYLIST_MAX_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return None
    # The last piece has no newline yet: it may be a torn write, so it never counts.
    for line in reversed(text.split("\n")[:-1]):
        name = line.strip()
        if _is_segment_name(name) and (segment := out_dir / name).is_file():
            return segment
    return None


def _is_segment_name(name: str) -> bool:
    """A plain file name in the output directory: no tag, URL, path or temp file."""
    return (
        bool(name)
        and not name.startswith((".", "#"))
        and "/" not in name
        and "\\" not in name
        and os.path.splitext(name)[1] in _SEGMENT_SUFFIXES
    )


def first_frame(segment: Path) -> Frame | None:
    """Decode only the first frame (a keyframe: each segment starts with one), or None."""
    if not segment.is_file():
        return None  # spares OpenCV's warning on stderr for a segment just deleted
    capture: cv2.VideoCapture | None = None
    try:
        # An absolute path keeps a name like "a:b.ts" from reading as an ffmpeg protocol;
        # one thread stops frame threading from decoding frames past the first.
        capture = cv2.VideoCapture(
            str(segment.absolute()), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, 1]
        )
        ok, frame = capture.read() if capture.isOpened() else (False, None)
    except cv2.error:
        return None
    finally:
        if capture is not None:
            capture.release()
    if not ok or frame is None:
        return None
    return cast(Frame, np.asarray(frame))


def encode_jpeg(frame: Frame, *, quality: int = 80, max_width: int | None = None) -> bytes:
    """JPEG of a BGR frame, scaled down (keeping its aspect) when wider than `max_width`."""
    _check_encoding(quality, max_width)
    height, width = frame.shape[:2]
    if max_width is not None and width > max_width:
        size = (max_width, max(1, round(height * max_width / width)))
        frame = cast(Frame, cv2.resize(frame, size, interpolation=cv2.INTER_AREA))
    ok, buffer = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"cannot encode a frame of shape {frame.shape} as JPEG")
    return buffer.tobytes()


def _check_encoding(quality: int, max_width: int | None) -> None:
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be 1..100, not {quality}")
    if max_width is not None and max_width < 1:
        raise ValueError(f"max_width must be positive, not {max_width}")


@functools.lru_cache(maxsize=32)
def offline_frame(width: int, height: int, text: str = "OFFLINE") -> Frame:
    """A dark BGR frame with `text` centred (ASCII only); read-only, shared between calls."""
    if not (1 <= width <= _MAX_OFFLINE_SIDE and 1 <= height <= _MAX_OFFLINE_SIDE):
        raise ValueError(f"offline image size {width}x{height} is out of range")
    frame = np.full((height, width, 3), _BACKGROUND, dtype=np.uint8)
    _draw_centred(
        frame, text, centre=(width // 2, height // 2), width=width * 0.6, colour=_FOREGROUND
    )
    frame.flags.writeable = False
    return frame


@functools.lru_cache(maxsize=32)
def offline_jpeg(width: int, height: int, text: str = "OFFLINE") -> bytes:
    """JPEG for a camera with nothing to show: a dark image with `text`, cached per size."""
    return encode_jpeg(offline_frame(width, height, text))


def ascii_text(text: str, *, limit: int = 64) -> str:
    """`text` as printable ASCII, the only alphabet cv2.putText draws."""
    return "".join(c if " " <= c <= "~" else "?" for c in text[:limit])


def _draw_centred(
    frame: Frame,
    text: str,
    *,
    centre: tuple[int, int],
    width: float,
    colour: tuple[int, int, int],
) -> None:
    """Draw `text` in place, centred on `centre` and scaled to about `width` pixels."""
    text = ascii_text(text)
    if not text.strip():
        return
    font = cv2.FONT_HERSHEY_SIMPLEX
    (unit_width, unit_height), _ = cv2.getTextSize(text, font, 1.0, 2)
    scale = min(width / unit_width, frame.shape[0] * 0.15 / unit_height)
    thickness = max(1, round(scale * 2))
    (text_width, text_height), _ = cv2.getTextSize(text, font, scale, thickness)
    origin = (centre[0] - text_width // 2, centre[1] + text_height // 2)
    cv2.putText(frame, text, origin, font, scale, colour, thickness, cv2.LINE_AA)


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """The latest JPEG of one camera and which segment (by name and inode state) it shows."""

    segment: tuple[str, int, int, int]
    taken: float
    jpeg: bytes


def _segment_state(segment: Path) -> tuple[str, int, int, int] | None:
    """Identity of a segment file: ffmpeg reuses names (s0.ts) after a restart."""
    try:
        stat = segment.stat()
    except OSError:
        return None
    return (segment.name, stat.st_ino, stat.st_mtime_ns, stat.st_size)


def _refresh(
    out_dir: Path, previous: _Snapshot | None, max_age_s: float, quality: int, width: int | None
) -> _Snapshot | None:
    """Blocking half of SnapshotCache.get: reuse `previous` or decode the newest segment."""
    segment = newest_segment(out_dir)
    state = None if segment is None else _segment_state(segment)
    if segment is None or state is None:
        return None
    if (
        previous is not None
        and previous.segment == state
        and time.monotonic() - previous.taken < max_age_s
    ):
        return previous
    frame = first_frame(segment)
    if frame is None:
        return None
    return _Snapshot(state, time.monotonic(), encode_jpeg(frame, quality=quality, max_width=width))


class SnapshotCache:
    """Latest JPEG per camera; concurrent requests for one camera share one decode."""

    def __init__(self, *, quality: int = 80, max_width: int | None = None) -> None:
        _check_encoding(quality, max_width)
        self._quality = quality
        self._max_width = max_width
        self._snapshots: dict[str, _Snapshot] = {}
        self._pending: dict[str, asyncio.Task[bytes | None]] = {}

    async def get(self, key: str, out_dir: Path, *, max_age_s: float = 2.0) -> bytes | None:
        """JPEG of the newest segment in `out_dir`, or None when there is nothing to show.

        Callers arriving while a refresh of `key` runs share it (and its `out_dir`)."""
        task = self._pending.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(
                self._refresh(key, out_dir, max_age_s), name=f"snapshot {key}"
            )
            self._pending[key] = task
            task.add_done_callback(functools.partial(self._settled, key))
        # One caller giving up must not cancel the decode the others wait for.
        return await asyncio.shield(task)

    def forget(self, key: str) -> None:
        """Drop the camera's JPEG; a refresh still running for it will not store its result."""
        self._snapshots.pop(key, None)
        self._pending.pop(key, None)

    async def _refresh(self, key: str, out_dir: Path, max_age_s: float) -> bytes | None:
        snapshot = await asyncio.to_thread(
            _refresh,
            out_dir,
            self._snapshots.get(key),
            max_age_s,
            self._quality,
            self._max_width,
        )
        if self._pending.get(key) is asyncio.current_task():
            if snapshot is None:
                self._snapshots.pop(key, None)
            else:
                self._snapshots[key] = snapshot
        return None if snapshot is None else snapshot.jpeg

    def _settled(self, key: str, task: asyncio.Task[bytes | None]) -> None:
        if self._pending.get(key) is task:
            del self._pending[key]
