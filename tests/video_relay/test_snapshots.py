"""Snapshots and mosaics from real HLS that ffmpeg writes from testsrc2, with a privacy
mask burnt into the top-left corner as the relay does."""

from __future__ import annotations

import asyncio
import shlex
import shutil
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.helpers import missing
from video_relay import snapshots
from video_relay.mosaic import MAX_TILES, jpeg_size, mosaic
from video_relay.snapshots import (
    Frame,
    SnapshotCache,
    encode_jpeg,
    first_frame,
    newest_segment,
    offline_jpeg,
)

MASK = (slice(0, 180), slice(0, 320))  # the drawbox below, in 1280x720 pixels
HLS_ARGS = shlex.split(
    "-hide_banner -loglevel error -nostdin -f lavfi -i testsrc2=size=1280x720:rate=25 -t 3 "
    "-vf drawbox=x=0:y=0:w=320:h=180:color=black:t=fill -c:v libx264 -preset ultrafast "
    "-g 25 -keyint_min 25 -sc_threshold 0 -f hls -hls_time 1 -hls_list_size 5"
)


@pytest.fixture(scope="module")
def hls(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three 1 s segments of 1280x720 H.264, each starting with a keyframe."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        missing("ffmpeg")
    assert ffmpeg is not None
    out = tmp_path_factory.mktemp("hls")
    subprocess.run(
        [ffmpeg, *HLS_ARGS, "-hls_segment_filename", str(out / "s%d.ts"), str(out / "index.m3u8")],
        check=True,
        timeout=60,
    )
    return out


def write_playlist(out_dir: Path, names: Sequence[str], *, tail: str = "") -> None:
    """Write a playlist the way ffmpeg does: a temporary file renamed over the old one."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:1"]
    for name in names:
        lines += ["#EXTINF:1.000000,", name]
    temporary = out_dir / "index.m3u8.tmp"
    temporary.write_text("\n".join(lines) + "\n" + tail)
    temporary.replace(out_dir / "index.m3u8")


def copy_segments(hls: Path, out_dir: Path, names: Sequence[str]) -> Path:
    out_dir.mkdir(exist_ok=True)
    for name in names:
        shutil.copy(hls / name, out_dir / name)
    return out_dir


def decode(jpeg: bytes) -> Frame:
    picture = cv2.imdecode(np.frombuffer(jpeg, dtype=np.uint8), cv2.IMREAD_COLOR)
    assert picture is not None
    return np.asarray(picture, dtype=np.uint8)


def test_newest_segment_is_the_last_listed(hls: Path) -> None:
    assert newest_segment(hls) == hls / "s2.ts"


def test_newest_segment_only_trusts_the_playlist(hls: Path, tmp_path: Path) -> None:
    """A segment still being written (unlisted, or ffmpeg's .tmp) must never be decoded."""
    out = copy_segments(hls, tmp_path / "cam", ["s0.ts", "s1.ts", "s2.ts"])
    shutil.copy(hls / "s2.ts", out / "s3.ts.tmp")
    hostile = ["s3.ts.tmp", "../hls0/s2.ts", "/etc/passwd", "http://example.org/s9.ts"]
    write_playlist(out, ["s0.ts", "s1.ts", *hostile])
    assert newest_segment(out) == out / "s1.ts"

    write_playlist(out, ["s0.ts", "s1.ts"], tail="s2.ts")  # torn: no newline yet
    assert newest_segment(out) == out / "s1.ts"

    write_playlist(out, ["s0.ts", "s1.ts", "s5.ts"])  # listed but already deleted
    assert newest_segment(out) == out / "s1.ts"

    (out / "index.m3u8").unlink()
    assert newest_segment(out) is None
    assert newest_segment(tmp_path / "absent") is None


def test_newest_segment_while_the_playlist_is_rewritten(hls: Path, tmp_path: Path) -> None:
    """ffmpeg rewrites the playlist every second while viewers ask for snapshots."""
    out = copy_segments(hls, tmp_path / "cam", ["s0.ts", "s1.ts", "s2.ts"])
    write_playlist(out, ["s0.ts", "s1.ts"])
    stop = threading.Event()

    def rewrite() -> None:
        while not stop.is_set():
            write_playlist(out, ["s0.ts", "s1.ts", "s2.ts"])
            write_playlist(out, ["s0.ts", "s1.ts"])

    writer = threading.Thread(target=rewrite)
    writer.start()
    try:
        seen = {newest_segment(out) for _ in range(2000)}
    finally:
        stop.set()
        writer.join()
    assert seen <= {out / "s1.ts", out / "s2.ts"}


def test_snapshot_keeps_the_privacy_mask(hls: Path) -> None:
    """The mask is burnt in by ffmpeg; the still must show it exactly as the stream does."""
    frame = first_frame(hls / "s2.ts")
    assert frame is not None
    picture = decode(encode_jpeg(frame))
    assert picture.shape == (720, 1280, 3)
    assert picture[MASK].mean() < 10
    assert picture[360:, :].std() > 20

    small = decode(encode_jpeg(frame, quality=60, max_width=640))
    assert small.shape == (360, 640, 3)
    assert small[0:90, 0:160].mean() < 10


def test_unreadable_segment_gives_no_frame(tmp_path: Path) -> None:
    garbage = tmp_path / "s0.ts"
    garbage.write_bytes(b"\x47not a transport stream" * 100)
    assert first_frame(garbage) is None
    assert first_frame(tmp_path / "s1.ts") is None


class CountedDecodes:
    """Wraps first_frame, slowly enough that concurrent callers overlap."""

    def __init__(self) -> None:
        self.calls: list[Path] = []

    def __call__(self, segment: Path) -> Frame | None:
        self.calls.append(segment)
        time.sleep(0.05)
        return first_frame(segment)


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> CountedDecodes:
    counted = CountedDecodes()
    monkeypatch.setattr(snapshots, "first_frame", counted)
    return counted


async def test_concurrent_viewers_share_one_decode(hls: Path, decodes: CountedDecodes) -> None:
    """Twenty TVs opening the same camera at once must cost one decode, not twenty."""
    cache = SnapshotCache()
    results = await asyncio.gather(*(cache.get("cam-1", hls) for _ in range(20)))
    assert len(decodes.calls) == 1
    assert results[0] is not None and set(results) == {results[0]}
    assert await cache.get("cam-1", hls) == results[0]
    assert len(decodes.calls) == 1


async def test_a_viewer_leaving_does_not_cancel_the_others(
    hls: Path, decodes: CountedDecodes
) -> None:
    cache = SnapshotCache()
    leaving = asyncio.ensure_future(cache.get("cam-1", hls))
    staying = asyncio.ensure_future(cache.get("cam-1", hls))
    await asyncio.sleep(0.01)
    leaving.cancel()
    assert await staying is not None
    assert len(decodes.calls) == 1


async def test_forget_during_a_decode(hls: Path, decodes: CountedDecodes) -> None:
    """A camera removed mid-decode leaves nothing behind in the cache."""
    cache = SnapshotCache()
    pending = asyncio.ensure_future(cache.get("cam-1", hls))
    await asyncio.sleep(0.01)
    cache.forget("cam-1")
    assert await pending is not None
    assert await cache.get("cam-1", hls) is not None
    assert len(decodes.calls) == 2


async def test_cache_follows_new_segments_and_age(
    hls: Path, tmp_path: Path, decodes: CountedDecodes
) -> None:
    """A still older than the newest segment, or than max_age_s, is never served."""
    out = copy_segments(hls, tmp_path / "cam", ["s0.ts", "s1.ts"])
    write_playlist(out, ["s0.ts"])
    cache = SnapshotCache(max_width=640)
    first = await cache.get("cam-1", out)
    assert first is not None and decode(first).shape == (360, 640, 3)
    assert await cache.get("cam-1", out) == first
    assert len(decodes.calls) == 1

    write_playlist(out, ["s0.ts", "s1.ts"])
    second = await cache.get("cam-1", out)
    assert second is not None and second != first
    assert decodes.calls[-1] == out / "s1.ts"

    await asyncio.sleep(0.06)
    assert await cache.get("cam-1", out, max_age_s=0.05) is not None
    assert len(decodes.calls) == 3

    cache.forget("cam-1")
    assert await cache.get("cam-1", out) is not None
    assert len(decodes.calls) == 4

    (out / "index.m3u8").unlink()  # the relay stopped: no stale still
    assert await cache.get("cam-1", out) is None
    assert await cache.get("cam-2", tmp_path / "absent") is None


def test_offline_image() -> None:
    jpeg = offline_jpeg(640, 360)
    assert offline_jpeg(640, 360) is jpeg
    picture = decode(jpeg)
    assert picture.shape == (360, 640, 3)
    assert picture.mean() < 40
    assert decode(offline_jpeg(320, 240, "离线 OFFLINE")).shape == (240, 320, 3)


def tile(picture: Frame, row: int, column: int, size: tuple[int, int] = (640, 360)) -> Frame:
    width, height = size
    return picture[row * height : (row + 1) * height, column * width : (column + 1) * width]


def test_mosaic_of_snapshots_and_dead_cameras(hls: Path) -> None:
    """A camera that is down, or a corrupt still, shows as offline; the wall stays up."""
    stills = []
    for name in ("s0.ts", "s1.ts", "s2.ts"):
        frame = first_frame(hls / name)
        assert frame is not None
        stills.append(encode_jpeg(frame))
    labels = ["cam-1", "cam-2", "cam-3", "cam-4", "cam-5"]
    picture = decode(mosaic([*stills, None, b"\xff\xd8garbage"], labels=labels))
    assert picture.shape == (720, 1920, 3)  # ceil(sqrt(5)) = 3 columns, 2 rows

    for column in range(3):
        camera = tile(picture, 0, column)
        assert camera[40:88, 4:156].mean() < 10  # the mask, below the label
        assert camera[180:, :].std() > 20
        assert camera[4:20, 4:40].max() > 200  # white label text on its black box
    for column in (0, 1):
        offline = tile(picture, 1, column)
        assert offline.mean() < 40
        assert offline[280:, :].std() < 3 and offline[:, 600:].std() < 3
    assert tile(picture, 1, 2)[16:, 16:].max() < 10  # the empty cell (JPEG blocks straddle edges)


def test_mosaic_letterboxes(hls: Path) -> None:
    frame = first_frame(hls / "s2.ts")
    assert frame is not None
    four_by_three = encode_jpeg(np.ascontiguousarray(frame[:, 320:1280]))
    picture = decode(mosaic([four_by_three]))
    assert picture.shape == (360, 640, 3)
    assert picture[:, :76].max() < 20 and picture[:, 564:].max() < 20  # 80 px bars
    assert picture[:, 84:556].std() > 20


def test_mosaic_of_nothing_and_of_too_much(hls: Path) -> None:
    assert decode(mosaic([])).shape == (360, 640, 3)
    frame = first_frame(hls / "s0.ts")
    assert frame is not None
    still = encode_jpeg(frame, max_width=320)
    picture = decode(mosaic([still] * 200, tile_size=(160, 90)))
    assert MAX_TILES == 64
    assert picture.shape == (8 * 90, 8 * 160, 3)
    assert decode(mosaic([still] * 5, columns=5, tile_size=(160, 90))).shape == (90, 800, 3)


def test_mosaic_refuses_decompression_bombs(hls: Path) -> None:
    """A tile is decoded only when its header declares a plausible size."""
    frame = first_frame(hls / "s0.ts")
    assert frame is not None
    still = bytearray(encode_jpeg(frame, max_width=320))
    assert jpeg_size(bytes(still)) == (320, 180)
    sof = still.index(b"\xff\xc0")
    still[sof + 5 : sof + 9] = (60000).to_bytes(2, "big") * 2
    assert jpeg_size(bytes(still)) == (60000, 60000)
    offline = mosaic([None])
    assert mosaic([bytes(still)]) == offline
    assert mosaic([bytes(still[:40])]) == offline
    assert mosaic([b"\x89PNG\r\n\x1a\n"]) == offline
