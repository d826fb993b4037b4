"""Video relay: cold start, CPU beside ffmpeg alone, and 200 HLS viewers of one camera.

The server is `xueliang relay` alone (the video relay, without the portal and the
bridge that `xueliang run` adds), on the demo county seeded by `xueliang seed-demo`
into a temp data dir, with `video.idle_grace_s` shortened to 2 s so that a camera goes
cold again between runs. Every figure stands beside a baseline from the same run:

1. Cold start, 5 times: first `GET index.m3u8` → a 200 playlist with ≥ 1 segment (and
   ≥ 3), beside the same ffmpeg argv (`hls_argv`, preset stb, `testsrc://`) started
   directly → the first (third) segment in its own playlist; both polled every 20 ms.
   Then the `copy` profile of a looped file with a 4 s GOP beside the same remux argv
   alone: a remux can only cut segments at the camera's keyframes. Aims: first segment
   ≤ 3 s (issue), ≤ 2 s (target).
2. CPU: one viewer fetching the playlist every second and each new segment, 20 s:
   the relay process + its ffmpeg, beside the same ffmpeg argv alone, run at the same
   time over the same window (from 2 s after the relay's first segment), so that both
   see the same load on a shared machine. Aim ≤ 1.10×.
3. 200 such viewers of one camera for 20 s (counted from 3 s after they start to
   join, 3 segments back each), from one asyncio loop in this process: segment and
   playlist latency (target p99 ≤ 50 ms), relay CPU, ffmpeg processes (must stay 1),
   bytes served; baseline: the one viewer of 2. Then the floor: the same 200 viewers
   for 10 s against a bare aiohttp server (a playlist that grows each second, one of
   the relay's segments by FileResponse) with the camera's ffmpeg argv running beside
   it, as the relay has its own. The client's CPU, and how long the relay's and
   the client's event loops waited for a CPU (this kind of machine has 2 cores, often
   shared), say whether the figures are the relay's own.

Everything listens on and talks to 127.0.0.1; every process started here is stopped,
and the temp folder removed, whatever happens."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import http.client
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import aiohttp

from bench.figures import Row, Stats, ms, print_table
from bench.procs import (
    command_name,
    cpu_seconds,
    descendants,
    exit_on_sigterm,
    free_port,
    machine_busy,
    machine_cpu,
    stop,
    wait_http,
    wait_port,
)
from video_relay.presets import PRESETS, hls_argv
from xueliang.ffmpeg import find_ffmpeg
from xueliang.signing import load_secret_key
from xueliang.video_urls import camera_url

CAMERA = "qilong-square"  # the demo county's camera: testsrc://, profile stb
COPY_CAMERA = "bench-gop4"
COLD_RUNS = 5
COPY_RUNS = 2
GRACE_S = 2.0  # video.idle_grace_s of the relay under test (the default is 30 s)
POLL_S = 0.02
SETTLE_S = 2.0
CPU_S = 20.0
VIEWERS = 200
VIEW_S = 20.0
STAGGER_S = 1.0  # viewers start spread over this
BARE_S = 10.0
RAMP_S = 3.0  # 200 viewers joining (3 segments back each) before their window opens
PLAYLIST_EVERY_S = 1.0
START_BACK = 3  # a player joining a live playlist starts this many segments back
URL_TTL_S = 3600
FIRST_ISSUE_S = 3.0
FIRST_TARGET_S = 2.0
CPU_RATIO_AIM = 1.10
SEGMENT_P99_TARGET_MS = 50.0
CLIENT_BUSY = 0.8  # of one core: above it, the client may hold the latencies up
REPO = Path(__file__).resolve().parents[1]
# The looped camera of the copy profile: keyframes every 4 s (100 frames at 25 fps),
# about the bitrate of the stb preset; ultrafast only to make it quickly.
GOP4_SOURCE = (
    *("-nostdin", "-loglevel", "error", "-y"),
    *("-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25", "-t", "20"),
    *("-c:v", "libx264", "-preset", "ultrafast", "-profile:v", "main", "-level", "3.1"),
    *("-g", "100", "-keyint_min", "100", "-sc_threshold", "0"),
    *("-b:v", "1500k", "-maxrate", "1500k", "-bufsize", "3000k"),
)
_SEGMENT_URI = re.compile(r"^(seg/([0-9]+)\.ts\S*)$", re.MULTILINE)


# The server.


@dataclasses.dataclass(frozen=True, slots=True)
class Relay:
    folder: Path
    process: subprocess.Popen[bytes]
    port: int
    key: bytes
    ffmpeg: str
    source: Path  # the 4 s GOP file of COPY_CAMERA

    def path(self, camera: str, profile: str = "") -> str:
        return camera_url(self.key, camera, "index.m3u8", URL_TTL_S, profile)

    def ffmpegs(self) -> list[int]:
        return ffmpegs_of(self.process.pid)

    def producers(self) -> int:
        health = json.loads(wait_http(f"http://127.0.0.1:{self.port}/healthz", timeout=10))
        count: int = health["parts"]["video"]["producers"]
        return count


def ffmpegs_of(pid: int) -> list[int]:
    return sorted(p for p in descendants(pid) if command_name(p) == "ffmpeg")


def _env(extra: dict[str, str]) -> dict[str, str]:
    """The caller's environment without its XL_* (a database URL, a config file)."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("XL_")}, **extra}


def _cli(args: Sequence[str], env: dict[str, str], log: Path) -> None:
    with log.open("ab") as out:
        done = subprocess.run(
            [sys.executable, "-m", "xueliang", *args], env=_env(env), stdout=out, stderr=out,
            cwd=REPO, timeout=120, check=False,
        )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"xueliang {' '.join(args)} exited with {done.returncode}")


def _stop_tree(process: subprocess.Popen[bytes]) -> None:
    """Stop the server, then kill any ffmpeg of its that outlived it (by pid)."""
    children = [p for p in descendants(process.pid) if command_name(p) == "ffmpeg"]
    stop(process)
    for pid in children:
        if command_name(pid) == "ffmpeg":
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n  ".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextlib.contextmanager
def relay() -> Iterator[Relay]:
    """`xueliang relay` on a seeded demo county plus the copy camera, ready."""
    exit_on_sigterm()
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="xl-video-")))
        log = folder / "relay.log"
        (folder / "xueliang.toml").write_text(f"[video]\nidle_grace_s = {GRACE_S}\n")
        port = free_port()
        env = {
            "XL_CONFIG": str(folder / "xueliang.toml"),
            "XL_DATA_DIR": str(folder / "data"),
            "XL_HTTP_HOST": "127.0.0.1",
            "XL_HTTP_PORT": str(port),
            "XL_MQTT_PORT": str(free_port()),
        }
        ffmpeg = str(find_ffmpeg().path)
        source = folder / "gop4.ts"
        encode = subprocess.Popen(
            [ffmpeg, *GOP4_SOURCE, str(source)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        stack.callback(stop, encode)
        try:
            _cli(["seed-demo"], env, log)  # meanwhile ffmpeg makes the file
            with log.open("ab") as out:
                process = subprocess.Popen(
                    [sys.executable, "-m", "xueliang", "relay"], env=_env(env),
                    stdout=out, stderr=out, cwd=REPO,
                )  # fmt: skip
            stack.callback(_stop_tree, process)
            # Meanwhile (the relay reads cameras from the database when asked for one).
            add = ["camera", "add", "--id", COPY_CAMERA, "--name", "GOP 4 s", "--village"]
            _cli([*add, "qilong", "--url", source.as_uri(), "--profile", "copy"], env, log)
            if encode.wait(timeout=120) != 0:
                raise RuntimeError("ffmpeg could not make the 4 s GOP source")
            wait_http(f"http://127.0.0.1:{port}/healthz")
            key = load_secret_key(folder / "data")
            yield Relay(folder, process, port, key, ffmpeg, source)
        except BaseException:
            print(f"relay.log ends with:\n  {_tail(log)}")
            raise


def get(port: int, path: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        conn.close()


def listed(playlist: str) -> int:
    return playlist.count("#EXTINF")


def listed_in(folder: Path) -> int:
    try:
        return listed((folder / "index.m3u8").read_text())
    except FileNotFoundError:
        return 0


def wait_cold(server: Relay, timeout: float = 30) -> float:
    """Wait until no producer and no ffmpeg runs; returns the seconds it took."""
    started = time.perf_counter()
    while server.producers() or server.ffmpegs():
        if time.perf_counter() - started > timeout:
            raise TimeoutError(f"the relay still runs {server.ffmpegs()} after {timeout} s")
        time.sleep(0.05)
    return time.perf_counter() - started


# 1. Cold start.


@dataclasses.dataclass(frozen=True, slots=True)
class Cold:
    first: float  # seconds to the first segment
    last: float  # seconds to the `until`-th


def cold_relay(server: Relay, camera: str, profile: str, until: int) -> Cold:
    """From the first GET of a cold camera's playlist to ≥ 1 and ≥ `until` segments."""
    path = server.path(camera, profile)
    seen: list[float] = []  # seen[k]: when ≥ k + 1 segments were first listed
    started = time.perf_counter()
    while len(seen) < until:
        status, body = get(server.port, path)
        now = time.perf_counter() - started
        if status == 200:
            seen += [now] * (min(until, listed(body)) - len(seen))
        elif status != 503:
            raise RuntimeError(f"{camera} playlist answered {status}: {body[:200]}")
        if now > 30:
            raise TimeoutError(f"{camera}: {len(seen)} segments after 30 s")
        if len(seen) < until:
            time.sleep(POLL_S)
    return Cold(seen[0], seen[-1])


def cold_direct(argv: Sequence[str], out: Path, until: int) -> Cold:
    """From starting `argv` to ≥ 1 and ≥ `until` segments in its own playlist."""
    out.mkdir()
    seen: list[float] = []
    started = time.perf_counter()
    process = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        while len(seen) < until:
            count = listed_in(out)
            now = time.perf_counter() - started
            seen += [now] * (min(until, count) - len(seen))
            if process.poll() is not None or now > 30:
                raise RuntimeError(f"ffmpeg alone: {len(seen)} segments, {process.returncode=}")
            if len(seen) < until:
                time.sleep(POLL_S)
    finally:
        stop(process)
        shutil.rmtree(out, ignore_errors=True)
    return Cold(seen[0], seen[-1])


def stb_argv(server: Relay, out: Path) -> list[str]:
    preset = PRESETS["stb"]
    return hls_argv(server.ffmpeg, source_url="testsrc://", masks=(), preset=preset, out_dir=out)


def copy_argv(server: Relay, out: Path) -> list[str]:
    url, preset = server.source.as_uri(), PRESETS["copy"]
    return hls_argv(server.ffmpeg, source_url=url, masks=(), preset=preset, out_dir=out)


@dataclasses.dataclass(slots=True)
class ColdRuns:
    relay: list[Cold] = dataclasses.field(default_factory=list)
    direct: list[Cold] = dataclasses.field(default_factory=list)
    stop_s: list[float] = dataclasses.field(default_factory=list)  # idle camera → stopped


def cold_runs(
    server: Relay, camera: str, profile: str, argv: Callable[[Relay, Path], list[str]],
    runs: int, until: int,
) -> ColdRuns:  # fmt: skip
    """`runs` pairs, alternating which of relay and ffmpeg alone goes first."""
    result = ColdRuns()
    for run in range(runs):
        for which in ("direct", "relay") if run % 2 == 0 else ("relay", "direct"):
            if which == "relay":
                result.relay.append(cold_relay(server, camera, profile, until))
                result.stop_s.append(wait_cold(server))
            else:
                out = server.folder / f"direct-{profile or 'stb'}-{run}"
                result.direct.append(cold_direct(argv(server, out), out, until))
    return result


# 2. The same ffmpeg alone, beside the relay's.


@contextlib.contextmanager
def running(argv: Sequence[str], out: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`argv`, writing HLS into `out`, running; checked to have written segments and
    to be still running, then stopped and `out` removed."""
    out.mkdir()
    process = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        yield process
        if process.poll() is not None or not listed_in(out):
            raise RuntimeError(f"ffmpeg alone ended ({process.returncode}) or wrote nothing")
    finally:
        stop(process)
        shutil.rmtree(out, ignore_errors=True)


# 2 and 3. Viewers.


@dataclasses.dataclass(slots=True)
class Watch:
    viewers: int
    first_s: float = 0.0  # the GET that started (or joined) the producer
    seconds: float = 0.0
    # (seconds into the window when the request started, its latency)
    segments: list[tuple[float, float]] = dataclasses.field(default_factory=list)
    playlists: list[tuple[float, float]] = dataclasses.field(default_factory=list)
    per_viewer: list[int] = dataclasses.field(default_factory=list)  # segments fetched
    errors: int = 0
    non_200: int = 0
    bytes: int = 0
    relay_cpu_s: float = 0.0  # the server process (the relay, or the bare baseline)
    ffmpeg_cpu_s: float = 0.0  # its ffmpeg children
    beside_cpu_s: float = 0.0  # the process running beside it (ffmpeg alone)
    client_cpu_s: float = 0.0
    relay_waited_s: float = 0.0  # its event loop thread, runnable but not on a CPU
    client_waited_s: float = 0.0
    busy: float = 0.0
    ffmpeg_counts: list[int] = dataclasses.field(default_factory=list)
    ffmpeg_pids: set[int] = dataclasses.field(default_factory=set)
    argv: list[str] = dataclasses.field(default_factory=list)

    def percent(self, cpu_s: float) -> float:
        return 100 * cpu_s / self.seconds

    def stats(self, kind: Sequence[tuple[float, float]]) -> Stats:
        return Stats.of([latency for _, latency in kind])

    def slow_seconds(self, limit_s: float) -> str:
        """The seconds of the window whose segment p99 is over `limit_s`."""
        by_second: dict[int, list[float]] = {}
        for at, latency in self.segments:
            by_second.setdefault(int(at), []).append(latency)
        slow = [
            f"{second}: {ms(p99):.0f} ms"
            for second, latencies in sorted(by_second.items())
            if (p99 := Stats.of(latencies).p99) > limit_s
        ]
        return ", ".join(slow) or "none"


@dataclasses.dataclass(frozen=True, slots=True)
class _Snapshot:
    at: float
    relay: float
    ffmpeg: dict[int, float]
    client: float
    machine: tuple[int, int]
    relay_waited: float
    client_waited: float
    beside: float


def _snapshot(server: int, beside: int | None) -> _Snapshot:
    ffmpeg = {pid: cpu_seconds(pid) for pid in ffmpegs_of(server)}
    return _Snapshot(
        time.perf_counter(), cpu_seconds(server), ffmpeg, time.process_time(), machine_cpu(),
        run_queue_s(server), run_queue_s(os.getpid()),
        cpu_seconds(beside) if beside is not None else 0.0,
    )  # fmt: skip


def run_queue_s(pid: int) -> float:
    """Seconds the main thread of `pid` (an event loop here) has spent runnable but
    waiting for a CPU (the kernel's schedstat); 0 if unknown."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
    except OSError:
        return []


async def watch(
    port: int, path: str, server: int, viewers: int, warmup_s: float, seconds: float,
    beside: int | None = None,
) -> Watch:  # fmt: skip
    """`viewers` players of the playlist at `path`: each fetches it every second and
    every segment it has not fetched yet; figures count what starts in the `seconds`
    after `warmup_s` (after the first playlist answered), with the CPU of process
    `server`, its ffmpeg children and process `beside` meanwhile."""
    result = Watch(viewers, per_viewer=[0] * viewers)
    playlist_url = f"http://127.0.0.1:{port}{path}"
    directory = playlist_url.split("index.m3u8")[0]
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def fetch(url: str) -> tuple[int, bytes]:
            try:
                async with session.get(url) as response:
                    return response.status, await response.read()
            except (aiohttp.ClientError, TimeoutError):
                return 0, b""

        began = time.perf_counter()
        status, _ = await fetch(playlist_url)
        result.first_s = time.perf_counter() - began
        if status != 200:
            raise RuntimeError(f"{path} answered {status}")
        measure_from = time.perf_counter() + warmup_s
        end = measure_from + seconds

        def note(kind: list[tuple[float, float]], started: float, status: int, body: bytes) -> bool:
            if not measure_from <= started < end:
                return False
            if status == 0:
                result.errors += 1
            elif status != 200:
                result.non_200 += 1
            else:
                kind.append((started - measure_from, time.perf_counter() - started))
                result.bytes += len(body)
            return status == 200

        async def viewer(index: int) -> None:
            await asyncio.sleep(STAGGER_S * index / viewers)
            newest = -1
            tick = time.perf_counter()
            while (started := time.perf_counter()) < end:
                status, body = await fetch(playlist_url)
                note(result.playlists, started, status, body)
                found = [(int(seq), uri) for uri, seq in _SEGMENT_URI.findall(body.decode())]
                for seq, uri in found if newest >= 0 else found[-START_BACK:]:
                    if seq <= newest:
                        continue
                    started = time.perf_counter()
                    status, body = await fetch(directory + uri)
                    if note(result.segments, started, status, body):
                        result.per_viewer[index] += 1
                    newest = seq
                tick += PLAYLIST_EVERY_S
                await asyncio.sleep(max(0.0, tick - time.perf_counter()))

        async def monitor() -> None:
            await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
            before = _snapshot(server, beside)
            result.argv = _cmdline(min(before.ffmpeg, default=0))
            while time.perf_counter() < end:
                pids = ffmpegs_of(server)
                result.ffmpeg_counts.append(len(pids))
                result.ffmpeg_pids.update(pids)
                await asyncio.sleep(0.5)
            after = _snapshot(server, beside)
            result.seconds = after.at - before.at
            result.relay_cpu_s = after.relay - before.relay
            result.ffmpeg_cpu_s = sum(
                cpu - before.ffmpeg.get(pid, 0.0) for pid, cpu in after.ffmpeg.items()
            )
            result.client_cpu_s = after.client - before.client
            result.beside_cpu_s = after.beside - before.beside
            result.relay_waited_s = after.relay_waited - before.relay_waited
            result.client_waited_s = after.client_waited - before.client_waited
            result.busy = machine_busy(before.machine)

        await asyncio.gather(monitor(), *(viewer(i) for i in range(viewers)))
    return result


# 3. The floor: a bare aiohttp server with the relay's routes, one segment file.

BARE = """
import sys, time
from aiohttp import web
SEGMENT, START = sys.argv[2], time.monotonic()
async def playlist(request):
    newest = int(time.monotonic() - START)
    first = max(0, newest - 5)
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:1",
             f"#EXT-X-MEDIA-SEQUENCE:{first}", "#EXT-X-DISCONTINUITY-SEQUENCE:0"]
    for n in range(first, newest + 1):
        lines += ["#EXTINF:1.000,", f"seg/{n}.ts?{request.query_string}"]
    return web.Response(text="\\n".join(lines) + "\\n", headers={"Cache-Control": "no-cache"},
                        content_type="application/vnd.apple.mpegurl")
async def segment(request):
    return web.FileResponse(SEGMENT, headers={"Content-Type": "video/mp2t",
                                              "Cache-Control": "max-age=60"})
app = web.Application()
app.router.add_get("/video/bare/index.m3u8", playlist)
app.router.add_get("/video/bare/seg/{seq}.ts", segment)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


def newest_segment(server: Relay) -> Path:
    live = server.folder / "data" / "video" / CAMERA / "stb" / "live"
    found = [(int(p.stem[1:]), p) for p in live.glob("s*.ts") if p.stem[1:].isdigit()]
    copied = server.folder / "bare.ts"
    shutil.copyfile(max(found)[1], copied)
    return copied


def bare_aiohttp(server: Relay, segment: Path) -> Watch:
    """The same viewers against BARE serving `segment` as every segment, while the
    camera's ffmpeg argv runs beside it (the relay shares the machine with its own)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", BARE, str(port), str(segment)], env=_env({}),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        out = server.folder / "beside-bare"
        with running(stb_argv(server, out), out) as beside:
            wait_port(port, process=process)
            path = "/video/bare/index.m3u8?" + server.path(CAMERA).split("?", 1)[1]
            return asyncio.run(
                watch(port, path, process.pid, VIEWERS, RAMP_S, BARE_S, beside=beside.pid)
            )
    finally:
        stop(process)


# The report.


def _s(values: Sequence[float]) -> str:
    return " ".join(f"{v:.2f}" for v in values)


def cold_rows(stb: ColdRuns, copy: ColdRuns) -> tuple[list[Row], list[str]]:
    first = [c.first for c in stb.relay]
    first_alone = [c.first for c in stb.direct]
    third = [c.last for c in stb.relay]
    third_alone = [c.last for c in stb.direct]
    copy_first = statistics.median(c.first for c in copy.relay)
    copy_alone = statistics.median(c.first for c in copy.direct)
    issue, target = ms(FIRST_ISSUE_S), ms(FIRST_TARGET_S)
    n = len(first)
    rows = [
        Row(f"stb: 1st segment, median of {n}", ms(statistics.median(first)), "ms",
            ms(statistics.median(first_alone)), issue, target),
        Row(f"stb: 1st segment, worst of {n}", ms(max(first)), "ms", ms(max(first_alone)),
            issue, target),
        Row(f"stb: 3 segments, median of {n}", ms(statistics.median(third)), "ms",
            ms(statistics.median(third_alone))),
        Row(f"copy, 4 s GOP: 1st segment, median of {len(copy.relay)}", ms(copy_first), "ms",
            ms(copy_alone)),
    ]  # fmt: skip
    overhead = [r - d for r, d in zip(first, first_alone, strict=True)]
    notes = [
        f"stb 1st segment, s: relay {_s(first)}; ffmpeg alone {_s(first_alone)}; "
        f"relay − alone, paired: median {ms(statistics.median(overhead)):.0f} ms",
        f"stb 3 segments, s: relay {_s(third)}; ffmpeg alone {_s(third_alone)}",
        f"copy 1st segment, s: relay {_s([c.first for c in copy.relay])}; ffmpeg alone "
        f"{_s([c.first for c in copy.direct])}: {copy_first / statistics.median(first):.1f}x "
        "the stb transcode; a remux cuts segments only at the camera's keyframes (every 4 s "
        "here), the stb preset forces one every second",
        f"idle camera stopped {_s(stb.stop_s + copy.stop_s)} s after the last request "
        f"(idle_grace_s {GRACE_S:g}, polled every 50 ms)",
    ]
    return rows, notes


def cpu_rows(one: Watch, same_argv: bool) -> tuple[list[Row], list[str]]:
    total, alone = one.relay_cpu_s + one.ffmpeg_cpu_s, one.beside_cpu_s
    aim = CPU_RATIO_AIM * alone
    rows = [
        Row("relay process + its ffmpeg", total, "s", alone, aim, aim),
        Row("  its ffmpeg", one.ffmpeg_cpu_s, "s", alone),
        Row("  relay process (Python)", one.relay_cpu_s, "s"),
    ]
    notes = [
        f"one window of {one.seconds:.1f} s for both, from {SETTLE_S:g} s after the relay's "
        "first segment; ffmpeg alone ran at the same time, so both saw the same machine "
        f"(busy {one.busy:.0%} of {os.cpu_count()} cores)",
        "server: `xueliang relay` (video relay only, no portal or bridge); "
        f"relay's ffmpeg argv = hls_argv(stb, testsrc://) but for its folder: {same_argv}",
        f"ffmpeg processes of the relay during the window: {sorted(set(one.ffmpeg_counts))}, "
        f"pids {sorted(one.ffmpeg_pids)}",
    ]
    return rows, notes


def viewer_rows(many: Watch, one: Watch, bare: Watch) -> tuple[list[Row], list[str]]:
    seg, seg1 = many.stats(many.segments), one.stats(one.segments)
    pl, pl1 = many.stats(many.playlists), one.stats(one.playlists)
    bare_seg, bare_pl = bare.stats(bare.segments), bare.stats(bare.playlists)
    per_request = many.relay_cpu_s / max(1, seg.count + pl.count) * 1e6
    bare_per_request = bare.relay_cpu_s / max(1, bare_seg.count + bare_pl.count) * 1e6
    fetched = sorted(many.per_viewer)
    rows = [
        Row("segment p50", ms(seg.p50), "ms", ms(seg1.p50)),
        Row("segment p99", ms(seg.p99), "ms", ms(seg1.p99), target=SEGMENT_P99_TARGET_MS),
        Row("segment max", ms(seg.max), "ms", ms(seg1.max)),
        Row("playlist p50", ms(pl.p50), "ms", ms(pl1.p50)),
        Row("playlist p99", ms(pl.p99), "ms", ms(pl1.p99)),
        Row("relay process CPU", many.percent(many.relay_cpu_s), "%",
            one.percent(one.relay_cpu_s)),
        Row("ffmpeg CPU", many.percent(many.ffmpeg_cpu_s), "%", one.percent(one.ffmpeg_cpu_s)),
        Row("ffmpeg processes, most seen", max(many.ffmpeg_counts, default=0), "",
            max(one.ffmpeg_counts, default=0), 1, 1),
        Row("bytes served", many.bytes / 1e6, "MB", one.bytes / 1e6),
        Row("errors + non-200", many.errors + many.non_200, "", one.errors + one.non_200, 0, 0),
        Row("segment p99 (baseline: bare aiohttp)", ms(seg.p99), "ms", ms(bare_seg.p99)),
        Row("CPU a request (baseline: bare aiohttp)", per_request, "µs", bare_per_request),
    ]  # fmt: skip
    client = many.percent(many.client_cpu_s)
    verdict = "may be the bottleneck" if client > 100 * CLIENT_BUSY else "not the bottleneck"
    notes = [
        f"{many.viewers} viewers, {many.seconds:.1f} s: {seg.count} segments + {pl.count} "
        f"playlists ({(seg.count + pl.count) / many.seconds:.0f} req/s, "
        f"{many.bytes / many.seconds / 1e6:.1f} MB/s); segments a viewer fetched: "
        f"min {fetched[0]}, median {statistics.median(fetched):g}, max {fetched[-1]}",
        f"client (this process, one asyncio loop): {client:.0f}% of a core, {verdict}; "
        f"1 viewer: {one.percent(one.client_cpu_s):.1f}%; machine busy {many.busy:.0%} of "
        f"{os.cpu_count()} cores",
        f"relay event loop waiting for a CPU (run queue): {many.percent(many.relay_waited_s):.0f}%"
        f" of the window ({one.percent(one.relay_waited_s):.0f}% with 1 viewer); "
        f"the client's {many.percent(many.client_waited_s):.0f}%",
        f"seconds of the window with segment p99 > {SEGMENT_P99_TARGET_MS:g} ms: "
        f"{many.slow_seconds(SEGMENT_P99_TARGET_MS / 1000)}",
        f"ffmpeg pids seen (1 viewer, then {many.viewers}): {sorted(one.ffmpeg_pids)}, "
        f"{sorted(many.ffmpeg_pids)}",
        f"bare aiohttp (same client, one of the relay's segments by FileResponse, a playlist "
        f"a second, the same ffmpeg beside it; right after, {bare.seconds:.0f} s): segment "
        f"p50 {ms(bare_seg.p50):.2f} ms, p99 "
        f"{ms(bare_seg.p99):.1f} ms; playlist p99 {ms(bare_pl.p99):.1f} ms; CPU "
        f"{bare.percent(bare.relay_cpu_s):.0f}%; its loop waited for a CPU "
        f"{bare.percent(bare.relay_waited_s):.0f}%; machine busy {bare.busy:.0%}",
    ]
    return rows, notes


def _same_argv(seen: Sequence[str], expected: Sequence[str]) -> bool:
    """The relay's ffmpeg ran `expected` but for its output folder (the last 2 args)."""
    return len(seen) == len(expected) and list(seen[:-2]) == list(expected[:-2])


def _log_summary(log: Path) -> str:
    lines = log.read_text(errors="replace").splitlines()
    bad = [line for line in lines if re.search(r"\b(WARNING|ERROR|CRITICAL|Traceback)\b", line)]
    return f"{len(bad)} warnings or errors" + (f"; first: {bad[0][:160]}" if bad else "")


def main() -> None:
    started = time.perf_counter()
    load = os.getloadavg()[0]
    with relay() as server:
        setup_s = time.perf_counter() - started
        stb = cold_runs(server, CAMERA, "", stb_argv, COLD_RUNS, 3)
        copy = cold_runs(server, COPY_CAMERA, "copy", copy_argv, COPY_RUNS, 1)
        wait_cold(server)
        port, path, pid = server.port, server.path(CAMERA), server.process.pid
        out = server.folder / "alone"
        with running(stb_argv(server, out), out) as alone:
            one = asyncio.run(watch(port, path, pid, 1, SETTLE_S, CPU_S, beside=alone.pid))
        many = asyncio.run(watch(port, path, pid, VIEWERS, RAMP_S, VIEW_S))
        segment = newest_segment(server)
        expected = stb_argv(server, server.folder / "any")
        log_summary = _log_summary(server.folder / "relay.log")
        wait_cold(server)
        bare = bare_aiohttp(server, segment)
    rows, notes = cold_rows(stb, copy)
    print_table(
        "video relay cold start: first GET of a cold camera's playlist → ≥ 1 (≥ 3) "
        "segments listed, polled every 20 ms (baseline: the same ffmpeg argv alone → its "
        "own playlist, same run)",
        rows,
        notes,
    )
    print()
    rows, notes = cpu_rows(one, _same_argv(one.argv, expected))
    print_table(
        f"video relay CPU seconds, 1 viewer for {CPU_S:g} s (baseline: the same ffmpeg argv "
        "alone, same window)",
        rows,
        notes,
    )
    print()
    rows, notes = viewer_rows(many, one, bare)
    print_table(
        f"video relay, {VIEWERS} HLS viewers of one camera for {VIEW_S:g} s: playlist every "
        f"{PLAYLIST_EVERY_S:g} s + each new segment (baseline: 1 viewer the same way)",
        rows,
        [
            *notes,
            f"relay log: {log_summary}",
            f"setup {setup_s:.1f} s; ran {time.perf_counter() - started:.1f} s; "
            f"load average at start {load:.1f}",
        ],
    )


if __name__ == "__main__":
    main()
