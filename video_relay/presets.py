"""Named, versioned ffmpeg argument lists that turn a camera into HLS an old set-top box
plays: pure functions from a camera's source, masks and profile to an argv."""

from __future__ import annotations

import functools
import re
import shlex
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import ffmpeg as ffmpeg_graph

from video_relay.masks import burn_in, has_polygons
from xueliang.cameras import Mask, check_source_url
from xueliang.errors import InvalidInput
from xueliang.urls import redact_text, redact_url

# -y: an existing playlist is to be appended to, not a reason to stop.
GLOBAL_ARGS = ("-nostdin", "-hide_banner", "-loglevel", "warning", "-y")
# append_list makes a restarted producer continue the playlist (and ffmpeg then marks
# the join with #EXT-X-DISCONTINUITY); never independent_segments: it raises the
# playlist to EXT-X-VERSION:6, which old set-top boxes refuse.
HLS_FLAGS = "delete_segments+omit_endlist+temp_file+append_list"
PLAYLIST = "index.m3u8"
SEGMENTS = "s%d.ts"
SLATE_FPS = 5  # a still picture: few frames keep the encoder idle
_TEXT = re.compile(r"[\w .!?/()-]{1,64}")
_SIZE = re.compile(r"([0-9]{2,4})x([0-9]{2,4})")
_RATE = re.compile(r"[0-9]{1,2}")
_SEGMENT = re.compile(r"s([0-9]+)\.ts")


@dataclass(frozen=True, slots=True)
class Preset:
    """How one profile encodes. For `copy` (remux) the encoding fields only describe the
    offline slate shown while the camera is down."""

    name: str
    version: int  # bump whenever the argv changes
    transcode: bool
    width: int
    height: int
    level: str
    bitrate: int  # kbit/s
    maxrate: int
    bufsize: int
    profile: Literal["main"] = "main"
    # Constant output rate: faster cameras lose frames, slower ones repeat them (a
    # repeat costs x264 a few bytes), so a GOP of fps * gop_s frames is gop_s seconds.
    fps: int = 25
    gop_s: int = 1
    segment_s: int = 1
    audio: Literal["none", "aac"] = "none"
    x264_preset: Literal["superfast", "veryfast"] = "superfast"

    @property
    def gop(self) -> int:
        """Frames from one keyframe to the next."""
        return self.fps * self.gop_s


PRESETS: dict[str, Preset] = {
    # 720p at 25 fps is 90,000 macroblocks/s: inside level 3.1 (108,000).
    "stb": Preset(
        name="stb", version=1, transcode=True, width=1280, height=720, level="3.1",
        bitrate=1500, maxrate=1500, bufsize=3000,
    ),
    # 720x576 at 25 fps is exactly level 3.0's 40,500 macroblocks/s.
    "stb-sd": Preset(
        name="stb-sd", version=1, transcode=True, width=720, height=576, level="3.0",
        bitrate=800, maxrate=800, bufsize=1600,
    ),
    # Remux: segments follow the camera's GOP; only for cameras without masks.
    "copy": Preset(
        name="copy", version=1, transcode=False, width=1280, height=720, level="3.1",
        bitrate=1500, maxrate=1500, bufsize=3000,
    ),
}  # fmt: skip


def input_args(source_url: str, *, timeout_s: float = 10.0) -> list[str]:
    """The input options and `-i` for a camera's source URL (credentials kept: ffmpeg
    needs them; log with `display_argv`)."""
    check_source_url(source_url)
    parts = urlsplit(source_url)
    micros = str(round(timeout_s * 1_000_000))
    if parts.scheme in ("rtsp", "rtsps"):
        # ffmpeg >= 5: -timeout is the socket timeout (ffmpeg 4 read it as "listen").
        return [
            *("-rtsp_transport", "tcp", "-timeout", micros),
            *("-fflags", "+genpts+discardcorrupt"),
            *("-i", source_url),
        ]
    if parts.scheme in ("http", "https"):
        return [
            *("-rw_timeout", micros),
            *("-reconnect", "1", "-reconnect_streamed", "1", "-reconnect_delay_max", "2"),
            *("-i", source_url),
        ]
    if parts.scheme == "file":
        return ["-re", "-stream_loop", "-1", "-i", _file_path(source_url)]
    if parts.scheme == "testsrc":
        return ["-re", "-f", "lavfi", "-i", _testsrc(source_url)]
    raise InvalidInput("url", f"no ffmpeg input for scheme {parts.scheme!r}")


def _file_path(url: str) -> str:
    parts = urlsplit(url)
    path = unquote(parts.path)
    if parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
        raise InvalidInput("url", "a file source is file:///ABSOLUTE/PATH")
    if not path.startswith("/") or not path.isprintable():
        raise InvalidInput("url", "a file source is file:///ABSOLUTE/PATH")
    return path


def _testsrc(url: str) -> str:
    """`testsrc://[?size=WxH&rate=N]` as a lavfi graph; only digits and `x` get through."""
    parts = urlsplit(url)
    if parts.netloc or parts.path not in ("", "/") or parts.fragment:
        raise InvalidInput("url", "testsrc takes only ?size=WxH&rate=N")
    options = {"size": "1280x720", "rate": "25"}
    seen: set[str] = set()
    for pair in parts.query.split("&") if parts.query else ():
        key, _, value = pair.partition("=")
        if key not in options or key in seen:
            raise InvalidInput("url", "testsrc takes only ?size=WxH&rate=N")
        seen.add(key)
        options[key] = value
    size, rate = _SIZE.fullmatch(options["size"]), _RATE.fullmatch(options["rate"])
    if size is None or rate is None:
        raise InvalidInput("url", "testsrc size is WxH (digits) and rate a number")
    width, height = int(size[1]), int(size[2])
    if not (16 <= width <= 3840 and 16 <= height <= 2160 and 1 <= int(rate[0]) <= 60):
        raise InvalidInput("url", "testsrc size is at most 3840x2160, rate 1..60")
    return f"testsrc2=size={width}x{height}:rate={int(rate[0])}"


def hls_argv(
    ffmpeg: str,
    *,
    source_url: str,
    masks: Sequence[Mask],
    preset: Preset,
    out_dir: Path,
    start_number: int = 0,
    list_size: int = 6,
    timeout_s: float = 10.0,
    mask_png: Path | None = None,
) -> list[str]:
    """ffmpeg argv relaying `source_url` as live HLS (`out_dir/index.m3u8`) with the
    masks burnt in; polygons need `mask_png` drawn by `render_mask_png` at the preset's
    size. With a playlist in `out_dir`, ffmpeg appends to it: see `resume_number`."""
    source = input_args(source_url, timeout_s=timeout_s)
    if not preset.transcode:
        if masks:
            raise InvalidInput("masks", "the copy profile cannot hide masks: use stb or stb-sd")
        video = [*source, "-map", "0:v:0", "-c", "copy", "-an"]
    else:
        inputs = {"<source>": source}
        main = ffmpeg_graph.input("<source>").video
        polygon = None
        if has_polygons(masks):
            if mask_png is None:
                raise ValueError("polygon masks need mask_png (see render_mask_png)")
            # One frame, repeated by overlay (eof_action=repeat). `-loop 1` would decode
            # the PNG again for every frame (measured: the pipeline's CPU went up 2.4-fold)
            # and, without overlay's shortest=1, outlive the camera.
            inputs["<mask>"] = ["-i", str(mask_png)]
            polygon = ffmpeg_graph.input("<mask>").video
        picture = _masked_picture(main, masks, polygon, preset)
        video = [*_graph_args(picture, inputs), *_encode_args(preset, preset.fps)]
        video += _audio_args(preset)
    return [ffmpeg, *GLOBAL_ARGS, *video, *_hls_args(preset, out_dir, start_number, list_size)]


def _masked_picture(video: Any, masks: Sequence[Mask], polygon: Any, preset: Preset) -> Any:
    """Cap the frame rate, burn in the masks, and fit the picture into the preset's box."""
    width, height = preset.width, preset.height
    video = video.filter("fps", preset.fps)
    if masks:
        # Masks are fractions of the camera's picture, so they are drawn on the picture
        # stretched to the box, where pixel positions are known before the camera is
        # opened; the stretch keeps the display aspect in the sample aspect ratio, which
        # the fit below reads, so it costs nothing when the camera is 16:9 already.
        if polygon is not None:
            # The mask image's only frame has pts 0: nothing may come before it unmasked.
            video = video.filter("setpts", "PTS-STARTPTS")
        video = burn_in(video.filter("scale", width, height), masks, width, height)
        if polygon is not None:
            video = video.overlay(polygon)
    # Largest even size of the camera's display aspect inside the box, then pad to it.
    wide = f"gt(dar,{width}/{height})"
    fit_w = f"if({wide},{width},2*round({height}*dar/2))"
    fit_h = f"if({wide},2*round({width}/dar/2),{height})"
    video = video.filter("scale", fit_w, fit_h).filter("setsar", 1)
    return video.filter("pad", width, height, "(ow-iw)/2", "(oh-ih)/2", color="black")


def _graph_args(video: Any, inputs: dict[str, list[str]]) -> list[str]:
    """Inputs, `-filter_complex` and `-map` for an ffmpeg-python graph whose inputs are
    the placeholders named in `inputs` (ffmpeg-python escapes the filter arguments)."""
    args: list[str] = ffmpeg_graph.output(video, "<output>").get_args()
    result: list[str] = []
    i = 0
    while args[i] == "-i":  # in ffmpeg-python's order, which numbers the graph's inputs
        result += inputs[args[i + 1]]
        i += 2
    return result + args[i:-1]


def _encode_args(preset: Preset, fps: int) -> list[str]:
    gop = str(fps * preset.gop_s)
    return [
        *("-c:v", "libx264", "-preset:v", preset.x264_preset, "-tune:v", "zerolatency"),
        *("-profile:v", preset.profile, "-level:v", preset.level, "-pix_fmt", "yuv420p"),
        # Every segment starts with an IDR frame: a fixed GOP, no scene-cut keyframes,
        # and a keyframe forced on every GOP boundary in time whatever the source does.
        *("-g", gop, "-keyint_min", gop, "-sc_threshold", "0", "-bf", "0"),
        *("-forced-idr", "1", "-force_key_frames", f"expr:gte(t,n_forced*{preset.gop_s})"),
        *("-b:v", f"{preset.bitrate}k", "-maxrate", f"{preset.maxrate}k"),
        *("-bufsize", f"{preset.bufsize}k"),
    ]


def _audio_args(preset: Preset) -> list[str]:
    if preset.audio == "none":
        return ["-an"]
    return ["-map", "0:a:0?", "-c:a", "aac", "-b:a", "64k", "-ac", "1", "-ar", "44100"]


def _hls_args(preset: Preset, out_dir: Path, start_number: int, list_size: int) -> list[str]:
    if "%" in str(out_dir):
        raise ValueError(f"{out_dir}: '%' would be read as part of the segment pattern")
    if start_number < 0 or list_size < 1:
        raise ValueError("start_number must be >= 0 and list_size >= 1")
    return [
        # A muxer option (on the input it is accepted and ignored).
        *("-avoid_negative_ts", "make_zero"),
        *("-f", "hls", "-hls_time", str(preset.segment_s), "-hls_list_size", str(list_size)),
        *("-hls_flags", HLS_FLAGS, "-hls_segment_type", "mpegts"),
        *("-start_number", str(start_number)),
        *("-hls_segment_filename", str(out_dir / SEGMENTS), str(out_dir / PLAYLIST)),
    ]


def slate_argv(
    ffmpeg: str,
    *,
    preset: Preset,
    out_dir: Path,
    start_number: int,
    list_size: int = 6,
    text: str = "CAMERA OFFLINE",
    drawtext: bool | None = None,
) -> list[str]:
    """ffmpeg argv writing an "offline" picture into the camera's HLS playlist (same size,
    codec, GOP and numbering), so set-top boxes keep playing while the camera is down.
    `drawtext=None` asks the binary whether it has the filter (see `has_filter`)."""
    if not _TEXT.fullmatch(text):
        raise InvalidInput("text", "1 to 64 letters, digits, spaces or .!?/()-")
    if drawtext is None:
        drawtext = has_filter(ffmpeg, "drawtext")
    width, height = preset.width, preset.height
    background = f"color=c=0x202020:s={width}x{height}:r={SLATE_FPS}"
    picture = ffmpeg_graph.input("<slate>").video
    if drawtext:
        picture = picture.filter(
            "drawtext", text=text, expansion="none", fontcolor="white",
            fontsize=height // 12, x="(w-text_w)/2", y="(h-text_h)/2",
        )  # fmt: skip
    else:  # no text without libfreetype: a grey bar says "nothing here" well enough
        picture = picture.filter(
            "drawbox", x="iw/4", y="ih*9/20", w="iw/2", h="ih/10", color="gray", t="fill"
        )
    inputs = {"<slate>": ["-re", "-f", "lavfi", "-i", background]}
    video = [*_graph_args(picture, inputs), *_encode_args(preset, SLATE_FPS), "-an"]
    return [ffmpeg, *GLOBAL_ARGS, *video, *_hls_args(preset, out_dir, start_number, list_size)]


@functools.cache
def _filters(ffmpeg: str) -> frozenset[str]:
    try:
        listing = subprocess.run(
            [ffmpeg, "-hide_banner", "-filters"],
            capture_output=True, text=True, timeout=10, check=False,
        ).stdout  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return frozenset()
    # Lines look like " T.C drawtext  V->V  Draw text ...".
    return frozenset(
        fields[1] for fields in map(str.split, listing.splitlines())
        if len(fields) > 2 and "->" in fields[2]
    )  # fmt: skip


def has_filter(ffmpeg: str, name: str) -> bool:
    """Whether this ffmpeg binary has filter `name`. Runs `ffmpeg -filters` once per
    binary (cached), so it blocks: call it at start-up or off the event loop."""
    return name in _filters(ffmpeg)


def resume_number(out_dir: Path) -> int:
    """The `start_number` for a producer (re)starting on `out_dir`. With a playlist
    there, ffmpeg appends after its last segment, but only if `start_number` is at most
    its MEDIA-SEQUENCE (above it, ffmpeg renumbers the listed segments); without one,
    the number after the highest segment left, so no segment URL is reused."""
    try:
        playlist = (out_dir / PLAYLIST).read_text(encoding="utf-8")
    except FileNotFoundError:
        numbers = [int(m[1]) for p in out_dir.glob("s*.ts") if (m := _SEGMENT.fullmatch(p.name))]
        return max(numbers, default=-1) + 1
    found = re.search(r"^#EXT-X-MEDIA-SEQUENCE:([0-9]+)\s*$", playlist, re.MULTILINE)
    return int(found[1]) if found else 0


def display_argv(argv: Sequence[str]) -> str:
    """The argv as one shell-quoted line for logs, with URL credentials replaced by ***."""
    # redact_url first: it finds the host after the last "@", and camera passwords often
    # hold an unencoded "@" that redact_text's pattern would stop at.
    return shlex.join(redact_text(redact_url(arg)) for arg in argv)
