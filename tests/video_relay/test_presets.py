"""ffmpeg argv of the relay: the shape of each preset and input, and real ffmpeg runs
checked with ffprobe and OpenCV: what a set-top box decodes, and that masks hide."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from tests.helpers import missing
from video_relay.masks import render_mask_png
from video_relay.presets import (
    GLOBAL_ARGS,
    PRESETS,
    display_argv,
    has_filter,
    hls_argv,
    input_args,
    resume_number,
    slate_argv,
)
from xueliang import cameras
from xueliang.cameras import parse_mask
from xueliang.errors import InvalidInput

RTSP = "rtsp://admin:hunter2@192.0.2.7:554/Streaming/Channels/101"
OUT = Path("/var/lib/xueliang/hls/gate")
BLACK = parse_mask("0.05,0.1,0.3,0.3")
BLUR = parse_mask("0.5,0.1,0.2,0.3,blur")
TRIANGLE = parse_mask("poly:0.55,0.55;0.95,0.55;0.95,0.95")


def after(argv: Sequence[str], option: str) -> str:
    """The value given to `option` (its last occurrence)."""
    return argv[len(argv) - 1 - list(reversed(argv)).index(option) + 1]


def has_run(argv: Sequence[str], *run: str) -> bool:
    """Whether `run` appears in `argv` as consecutive arguments."""
    return any(list(argv[i : i + len(run)]) == list(run) for i in range(len(argv)))


# --- presets and inputs -------------------------------------------------------------


def test_one_preset_per_camera_profile() -> None:
    """A camera's stored profile always names a preset, and each fits its STB level."""
    assert set(PRESETS) == set(cameras.PROFILES)
    assert all(name == preset.name and preset.version >= 1 for name, preset in PRESETS.items())
    stb, sd, copy = PRESETS["stb"], PRESETS["stb-sd"], PRESETS["copy"]
    assert (stb.width, stb.height, stb.level, stb.profile) == (1280, 720, "3.1", "main")
    assert (sd.width, sd.height, sd.level) == (720, 576, "3.0")
    assert sd.bitrate < stb.bitrate and not copy.transcode
    assert stb.gop == 25 and stb.segment_s == 1 and stb.audio == "none"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (RTSP, ["-rtsp_transport", "tcp", "-timeout", "10000000",
                "-fflags", "+genpts+discardcorrupt", "-i", RTSP]),
        ("rtsps://cam.example/live", ["-rtsp_transport", "tcp", "-timeout", "10000000",
                                      "-fflags", "+genpts+discardcorrupt",
                                      "-i", "rtsps://cam.example/live"]),
        ("http://u:p@192.0.2.8/video.cgi?x=1", [
            "-rw_timeout", "10000000", "-reconnect", "1", "-reconnect_streamed", "1",
            "-reconnect_delay_max", "2", "-i", "http://u:p@192.0.2.8/video.cgi?x=1"]),
        ("https://cam.example/live.ts", [
            "-rw_timeout", "10000000", "-reconnect", "1", "-reconnect_streamed", "1",
            "-reconnect_delay_max", "2", "-i", "https://cam.example/live.ts"]),
        ("file:///srv/cams/gate%20night.mp4",
         ["-re", "-stream_loop", "-1", "-i", "/srv/cams/gate night.mp4"]),
        ("file://localhost/srv/gate.mp4", ["-re", "-stream_loop", "-1", "-i", "/srv/gate.mp4"]),
        ("testsrc://", ["-re", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25"]),
        ("testsrc://?size=1920x1080&rate=30",
         ["-re", "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30"]),
        ("testsrc:///?rate=5", ["-re", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=5"]),
    ],
)  # fmt: skip
def test_input_args_per_scheme(url: str, expected: list[str]) -> None:
    """Network sources always carry a socket timeout (a stalled camera must end ffmpeg);
    files and test patterns play in real time, forever."""
    assert input_args(url) == expected


def test_timeout_in_microseconds() -> None:
    assert after(input_args(RTSP, timeout_s=5), "-timeout") == "5000000"
    assert after(input_args("http://h/x", timeout_s=2.5), "-rw_timeout") == "2500000"


@pytest.mark.parametrize(
    "url",
    [
        "testsrc://?size=1280x720:rate=5,drawtext=text=pwned",
        "testsrc://?size=1280x720[out];movie=/etc/passwd",
        "testsrc://?rate=25,format=rgb24",
        "testsrc://?size=1280x720%3Arate%3D5",
        "testsrc://?size=١٢٨٠x720",  # digits, but not ASCII ones
        "testsrc://?size=99999x1",
        "testsrc://?size=8x8",
        "testsrc://?rate=0",
        "testsrc://?rate=100",
        "testsrc://?size=1280x720&size=640x480",
        "testsrc://?size=1280x720&",
        "testsrc://?color=red",
        "testsrc://?size",
        "testsrc://evil/",
        "testsrc:///etc/passwd",
        "testsrc://?size=1280x720#x",
        "ftp://192.0.2.7/cam",
        "javascript:alert(1)",
        "-i",
        "rtsp:///no-host",
        "rtsp://cam/live stream",
        "rtsp://cam/live\x00",
        "rtsp://cam/live\x7f",
        "file://",
        "file://otherhost/etc/passwd",
        "file:relative.mp4",
        "file:///srv/gate.mp4?x=1",
        "file:///srv/gate%0A.mp4",
        "file:///srv/gate%00.mp4",
        "",
    ],
)
def test_hostile_sources_refused(url: str) -> None:
    """A source URL reaches ffmpeg's command line: nothing in it may become a filter
    graph, an option or another file."""
    with pytest.raises(InvalidInput):
        input_args(url)


# --- HLS argv -----------------------------------------------------------------------


def test_stb_argv() -> None:
    """H.264 Main 3.1, keyframe at every second (= every segment), VERSION 3 playlist
    that a restarted producer appends to."""
    argv = hls_argv("ffmpeg", source_url=RTSP, masks=[], preset=PRESETS["stb"], out_dir=OUT)
    assert argv[: 1 + len(GLOBAL_ARGS)] == ["ffmpeg", *GLOBAL_ARGS]
    assert has_run(argv, "-nostdin", "-hide_banner", "-loglevel", "warning")
    assert has_run(argv, *input_args(RTSP))
    assert has_run(argv, "-c:v", "libx264", "-preset:v", "superfast", "-tune:v", "zerolatency")
    assert has_run(argv, "-profile:v", "main", "-level:v", "3.1", "-pix_fmt", "yuv420p")
    assert has_run(argv, "-g", "25", "-keyint_min", "25", "-sc_threshold", "0", "-bf", "0")
    assert after(argv, "-force_key_frames") == "expr:gte(t,n_forced*1)"
    assert has_run(argv, "-b:v", "1500k", "-maxrate", "1500k", "-bufsize", "3000k")
    assert "-an" in argv and "-c:a" not in argv
    assert after(argv, "-f") == "hls" and after(argv, "-hls_time") == "1"
    assert after(argv, "-hls_list_size") == "6" and after(argv, "-start_number") == "0"
    assert after(argv, "-hls_flags") == "delete_segments+omit_endlist+temp_file+append_list"
    assert after(argv, "-hls_segment_type") == "mpegts"
    assert after(argv, "-hls_segment_filename") == f"{OUT}/s%d.ts"
    assert argv[-1] == f"{OUT}/index.m3u8"
    assert not any("independent_segments" in arg for arg in argv)  # would be VERSION:6
    graph = after(argv, "-filter_complex")
    assert graph.startswith("[0:v]fps=25[s0];") and "pad=1280:720:" in graph
    output = re.search(r"\[s[0-9]+\]$", graph)
    assert "drawbox" not in graph and output is not None and after(argv, "-map") == output[0]


def test_stb_sd_argv() -> None:
    argv = hls_argv(
        "ffmpeg", source_url="testsrc://", masks=[], preset=PRESETS["stb-sd"], out_dir=OUT,
        start_number=41, list_size=4,
    )  # fmt: skip
    assert has_run(argv, "-level:v", "3.0") and has_run(argv, "-b:v", "800k")
    assert "pad=720:576:" in after(argv, "-filter_complex")
    assert after(argv, "-start_number") == "41" and after(argv, "-hls_list_size") == "4"


def test_rectangles_drawn_at_output_pixels() -> None:
    """Masks are placed at the preset's size, after scaling, on even pixels."""
    argv = hls_argv(
        "ffmpeg", source_url=RTSP, masks=[BLACK, BLUR], preset=PRESETS["stb"], out_dir=OUT
    )
    graph = after(argv, "-filter_complex")
    assert "scale=1280:720[" in graph  # stretched to the box before the masks
    assert "drawbox=color=black:h=216:t=fill:w=384:x=64:y=72" in graph
    assert "split=2" in graph and "crop=256:216:640:72" in graph
    assert "boxblur=chroma_radius=20:luma_radius=20" in graph
    assert "overlay=eof_action=repeat:x=640:y=72" in graph
    assert graph.index("drawbox") < graph.index("pad=")  # masks before the letterbox
    sd = after(
        hls_argv("ffmpeg", source_url=RTSP, masks=[BLACK], preset=PRESETS["stb-sd"], out_dir=OUT),
        "-filter_complex",
    )
    assert "drawbox=color=black:h=176:t=fill:w=216:x=36:y=56" in sd


def test_polygons_overlay_a_png(tmp_path: Path) -> None:
    png = tmp_path / "mask.png"
    with pytest.raises(ValueError, match="mask_png"):
        hls_argv("ffmpeg", source_url=RTSP, masks=[TRIANGLE], preset=PRESETS["stb"], out_dir=OUT)
    argv = hls_argv(
        "ffmpeg", source_url=RTSP, masks=[BLACK, TRIANGLE], preset=PRESETS["stb"],
        out_dir=OUT, mask_png=png,
    )  # fmt: skip
    assert has_run(argv, RTSP, "-i", str(png))  # the camera is input 0, the mask input 1
    assert "-loop" not in argv  # one frame, repeated by overlay
    graph = after(argv, "-filter_complex")
    assert "[1:v]overlay=eof_action=repeat[" in graph and "drawbox" in graph
    assert graph.startswith("[0:v]fps=25[s0];[s0]setpts=PTS-STARTPTS[s1]")


def test_copy_remuxes_and_refuses_masks() -> None:
    """Remuxing cannot hide anything: a camera with masks must be transcoded."""
    argv = hls_argv("ffmpeg", source_url=RTSP, masks=[], preset=PRESETS["copy"], out_dir=OUT)
    assert has_run(argv, "-map", "0:v:0", "-c", "copy", "-an")
    assert "-filter_complex" not in argv and "-c:v" not in argv
    assert after(argv, "-hls_flags").endswith("append_list")
    for masks in ([BLACK], [TRIANGLE]):
        with pytest.raises(InvalidInput, match="copy"):
            hls_argv("ffmpeg", source_url=RTSP, masks=masks, preset=PRESETS["copy"], out_dir=OUT)


def test_output_arguments_checked() -> None:
    stb = PRESETS["stb"]
    with pytest.raises(ValueError, match="%"):
        hls_argv("ffmpeg", source_url=RTSP, masks=[], preset=stb, out_dir=Path("/tmp/%n"))
    with pytest.raises(ValueError, match="start_number"):
        hls_argv("ffmpeg", source_url=RTSP, masks=[], preset=stb, out_dir=OUT, start_number=-1)


def test_slate_argv() -> None:
    """Same size, codec, level, GOP in time, segment length and numbering as the camera's
    own output, so a box keeps playing across the switch."""
    sd = PRESETS["stb-sd"]
    argv = slate_argv("ffmpeg", preset=sd, out_dir=OUT, start_number=12, drawtext=True)
    camera = hls_argv("ffmpeg", source_url=RTSP, masks=[], preset=sd, out_dir=OUT)
    assert has_run(argv, "-re", "-f", "lavfi", "-i", "color=c=0x202020:s=720x576:r=5")
    assert "drawtext=" in after(argv, "-filter_complex")
    assert "text=CAMERA OFFLINE" in after(argv, "-filter_complex")
    assert has_run(argv, "-g", "5", "-keyint_min", "5")  # 5 fps: one second
    for option in ("-profile:v", "-level:v", "-force_key_frames", "-b:v", "-hls_time",
                   "-hls_flags", "-hls_segment_filename", "-hls_segment_type"):  # fmt: skip
        assert after(argv, option) == after(camera, option), option
    assert after(argv, "-start_number") == "12" and argv[-1] == camera[-1]
    plain = slate_argv("ffmpeg", preset=sd, out_dir=OUT, start_number=0, drawtext=False)
    assert "drawtext" not in after(plain, "-filter_complex")


@pytest.mark.parametrize(
    "text", ["", "x" * 65, "a:b", "it's", "[out]", "a;b", "a,b", "%{pts}", "a\\b", "a\nb"]
)
def test_slate_text_checked(text: str) -> None:
    with pytest.raises(InvalidInput):
        slate_argv("ffmpeg", preset=PRESETS["stb"], out_dir=OUT, start_number=0, text=text)


def test_display_argv_hides_credentials() -> None:
    """ffmpeg needs the password in its argv; logs must never show it."""
    argv = hls_argv("ffmpeg", source_url=RTSP, masks=[BLUR], preset=PRESETS["stb"], out_dir=OUT)
    assert RTSP in argv
    line = display_argv(argv)
    assert "hunter2" not in line and "'rtsp://***@192.0.2.7:554/Streaming/Channels/101'" in line
    # Passwords often hold a raw "@": the host is what follows the last one.
    assert display_argv(["ffmpeg", "-i", "rtsp://u:p@ss@h/x"]) == "ffmpeg -i 'rtsp://***@h/x'"


def test_resume_number(tmp_path: Path) -> None:
    """A playlist's MEDIA-SEQUENCE lets ffmpeg append after its last segment; without a
    playlist, numbering goes past any segment left, so no segment URL is reused."""
    assert resume_number(tmp_path) == 0
    for name in ("s3.ts", "s10.ts", "s9.ts.tmp", "x7.ts"):
        (tmp_path / name).touch()
    assert resume_number(tmp_path) == 11
    (tmp_path / "index.m3u8").write_text(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:42\n"
        "#EXTINF:1.000000,\ns42.ts\n"
    )
    assert resume_number(tmp_path) == 42


def test_has_filter(ffmpeg: str, tmp_path: Path) -> None:
    assert has_filter(ffmpeg, "drawbox") and not has_filter(ffmpeg, "no-such-filter")
    assert not has_filter(str(tmp_path / "no-ffmpeg"), "drawbox")


# --- real ffmpeg ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def ffmpeg() -> str:
    path = shutil.which("ffmpeg")
    if path is None:
        missing("ffmpeg")
    assert path is not None
    return path


@pytest.fixture(scope="module")
def ffprobe() -> str:
    path = shutil.which("ffprobe")
    if path is None:
        missing("ffprobe")
    assert path is not None
    return path


def listed(out_dir: Path) -> tuple[int, list[tuple[str, bool]]]:
    """MEDIA-SEQUENCE and the segments of the playlist, each with whether an
    EXT-X-DISCONTINUITY precedes it."""
    sequence, segments, discontinuity = 0, [], False
    for line in (out_dir / "index.m3u8").read_text().splitlines():
        if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            sequence = int(line.split(":")[1])
        elif line == "#EXT-X-DISCONTINUITY":
            discontinuity = True
        elif line and not line.startswith("#"):
            segments.append((line, discontinuity))
            discontinuity = False
    return sequence, segments


def produce(argv: list[str], out_dir: Path, segments: int = 3) -> list[str]:
    """Run ffmpeg until the playlist lists `segments` new segments, then stop it as the
    supervisor would (SIGTERM); return the new segments, the last one cut short."""
    playlist = out_dir / "index.m3u8"
    before = {name for name, _ in listed(out_dir)[1]} if playlist.exists() else set()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and process.poll() is None:
            if playlist.exists():
                new = [n for n, _ in listed(out_dir)[1] if n not in before]
                if len(new) >= segments:
                    break
            time.sleep(0.1)
        process.terminate()
        _, errors = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode in (0, 255), errors  # 255: stopped by SIGTERM
    assert "rror" not in errors, errors
    new = [name for name, _ in listed(out_dir)[1] if name not in before]
    assert len(new) >= segments, new
    return new


def probe(ffprobe: str, *args: str) -> dict[str, Any]:
    out = subprocess.run(
        [ffprobe, "-v", "error", "-of", "json", *args],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    result: dict[str, Any] = json.loads(out)
    return result


def check_segments(ffprobe: str, out_dir: Path, names: list[str], size: tuple[int, int],
                   level: int, rate: str = "25/1") -> None:  # fmt: skip
    """What a set-top box needs: H.264 Main at its level and size, each segment opening
    on a keyframe, in a VERSION 3 playlist."""
    playlist = (out_dir / "index.m3u8").read_text()
    assert "#EXT-X-VERSION:3\n" in playlist and "INDEPENDENT-SEGMENTS" not in playlist
    for name in names:
        segment = str(out_dir / name)
        (stream,) = probe(
            ffprobe, "-select_streams", "v", "-show_entries",
            "stream=codec_name,profile,level,width,height,r_frame_rate", segment,
        )["streams"]  # fmt: skip
        assert (stream["codec_name"], stream["profile"]) == ("h264", "Main"), name
        assert stream["level"] <= level and (stream["width"], stream["height"]) == size, name
        assert stream["r_frame_rate"] == rate, name
        first = probe(
            ffprobe, "-select_streams", "v", "-show_packets", "-read_intervals", "%+#1",
            "-show_entries", "packet=flags", segment,
        )["packets"][0]  # fmt: skip
        assert "K" in first["flags"], name


def first_frame(segment: Path) -> np.ndarray[Any, Any]:
    capture = cv2.VideoCapture(str(segment))
    try:
        ok, frame = capture.read()
    finally:
        capture.release()
    assert ok, segment
    return np.asarray(frame)


def region_mean(frame: np.ndarray[Any, Any], x0: int, y0: int, x1: int, y1: int) -> float:
    return float(frame[y0:y1, x0:x1].mean())


def triangle_halves(width: int, height: int) -> tuple[np.ndarray[Any, Any], ...]:
    """TRIANGLE and the other half of its bounding box, each shrunk by a few pixels
    (encoding blurs edges), computed from the geometry, not from the mask PNG."""
    ys, xs = np.mgrid[0:height, 0:width]
    fx, fy = xs / width, ys / height
    box = (fx > 0.55) & (fx < 0.95) & (fy > 0.55) & (fy < 0.95)
    kernel = np.ones((9, 9), np.uint8)
    inside = (box & (fy < fx)).astype(np.uint8)
    outside = (box & (fy > fx)).astype(np.uint8)
    return cv2.erode(inside, kernel) > 0, cv2.erode(outside, kernel) > 0


def test_stb_relay_hides_masks(ffmpeg: str, ffprobe: str, tmp_path: Path) -> None:
    """1080p camera to 720p HLS a set-top box plays, with every mask kind hiding its
    region from the first frame on."""
    png = tmp_path / "mask.png"
    masks = [BLACK, BLUR, TRIANGLE]
    render_mask_png(masks, 1280, 720, png)
    argv = hls_argv(
        ffmpeg, source_url="testsrc://?size=1920x1080&rate=25", masks=masks,
        preset=PRESETS["stb"], out_dir=tmp_path, mask_png=png,
    )  # fmt: skip
    names = produce(argv, tmp_path)
    check_segments(ffprobe, tmp_path, names, (1280, 720), 31)
    inside, outside = triangle_halves(1280, 720)
    for name in (names[0], names[-1]):
        frame = first_frame(tmp_path / name)
        assert frame.shape == (720, 1280, 3)
        assert region_mean(frame, 64 + 4, 72 + 4, 448 - 4, 288 - 4) < 10, name  # BLACK
        assert frame[inside].mean() < 10, name  # the polygon, not its bounding box:
        assert frame[outside].mean() > 40, name
        assert region_mean(frame, 640, 72, 896, 288) > 40, name  # BLUR: blurred, not black
        assert region_mean(frame, 0, 400, 600, 720) > 40, name  # unmasked
    sharp = cv2.Laplacian(first_frame(tmp_path / names[1]), cv2.CV_64F)
    assert sharp[72 + 8 : 288 - 8, 640 + 8 : 896 - 8].var() < sharp[400:, :600].var() / 10


def test_stb_sd_masks_follow_the_picture(ffmpeg: str, ffprobe: str, tmp_path: Path) -> None:
    """A 16:9 camera on the SD preset is letterboxed: masks are fractions of the camera's
    picture, not of the padded frame."""
    bottom_left = parse_mask("0,0.75,0.5,0.25")
    argv = hls_argv(
        ffmpeg, source_url="testsrc://?size=1920x1080&rate=25", masks=[bottom_left],
        preset=PRESETS["stb-sd"], out_dir=tmp_path,
    )  # fmt: skip
    names = produce(argv, tmp_path)
    check_segments(ffprobe, tmp_path, names, (720, 576), 30)
    frame = first_frame(tmp_path / names[1])
    # The picture is 720x406 at rows 84..490; the mask covers its rows 304..406.
    assert region_mean(frame, 0, 0, 720, 80) < 10  # letterbox
    assert region_mean(frame, 4, 84 + 304 + 6, 356, 490 - 6) < 10  # the mask
    assert region_mean(frame, 4, 84 + 250, 356, 84 + 295) > 40  # above it: shown
    assert region_mean(frame, 366, 84 + 310, 716, 484) > 40  # right of it: shown


def test_restart_and_slate_continue_the_playlist(ffmpeg: str, ffprobe: str, tmp_path: Path) -> None:
    """Camera, then offline slate, then camera again: one playlist, numbers never
    reused, each join marked by EXT-X-DISCONTINUITY, so a box plays straight through."""
    stb = PRESETS["stb"]
    camera = hls_argv(ffmpeg, source_url="testsrc://", masks=[BLACK], preset=stb, out_dir=tmp_path)
    first = produce(camera, tmp_path, segments=2)
    slate = slate_argv(ffmpeg, preset=stb, out_dir=tmp_path, start_number=resume_number(tmp_path))
    offline = produce(slate, tmp_path, segments=2)
    check_segments(ffprobe, tmp_path, offline, (1280, 720), 31, rate="5/1")
    assert (offline[0], True) in listed(tmp_path)[1]
    again = hls_argv(
        ffmpeg, source_url="testsrc://", masks=[BLACK], preset=stb, out_dir=tmp_path,
        start_number=resume_number(tmp_path), list_size=6,
    )  # fmt: skip
    second = produce(again, tmp_path, segments=2)
    check_segments(ffprobe, tmp_path, second, (1280, 720), 31)

    sequence, segments = listed(tmp_path)
    names = [name for name, _ in segments]
    assert names == [f"s{sequence + i}.ts" for i in range(len(names))]  # no gap, no reuse
    assert names[-len(second) :] == second and len(names) == 6  # the window slid
    assert all((tmp_path / name).exists() for name in names)
    joins = [name for name, discontinuity in segments if discontinuity]
    assert joins == [name for name in (first[0], offline[0], second[0]) if name in names]
    assert [int(n[1:-3]) for n in first + offline + second] == list(
        range(len(first) + len(offline) + len(second))
    )
