"""TV portal throughput: `/tv/` of a paired box (`xueliang run --demo`) under 100
concurrent keep-alive clients, next to a bare aiohttp hello-world and a ~2 KB jinja2
page served by another process in the same run. The hello-world and `/tv/` are measured
in alternating rounds and each figure is the median of the rounds (this kind of
machine's speed drifts by ±20 % over a minute; a pair measured back to back shares
the drift, so the ratio is taken per round); then that the page served from the
portal's memory is not stale (the household presses its alarm on the TV, then cancels
it: the very next `/tv/` after each must show it); then what each TV page costs a box
without a cache: gzip bytes of HTML + CSS + JS, and requests. Aims: ≥ 0.5× the
hello-world's rate (issue and target), p99 ≤ 20 ms; ≤ 20 KB and ≤ 4 requests a page.

Load comes from wrk when it is on PATH, else (or with BENCH_LOAD=aiohttp) from an
aiohttp client in a separate process, `python -m bench.tv_pages load URL SECONDS
HEADERS`. Everything listens on and talks to 127.0.0.1 only."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gzip
import http.client
import http.cookies
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from bench.figures import Row, print_table
from bench.procs import (
    cpu_seconds,
    exit_on_sigterm,
    free_port,
    machine_busy,
    machine_cpu,
    stop,
    wait_http,
)
from xueliang.signing import derive, load_secret_key

CONNECTIONS = 100
WARMUP_S = 2.0
DURATION_S = 6.0
ROUNDS = 3
RATIO_AIM = 0.5
P99_TARGET_MS = 20.0
PAGE_BYTES_TARGET = 20_000  # 20 KB, counted as 20,000 bytes
PAGE_REQUESTS_TARGET = 4
PAGES = ("/tv/", "/tv/alarm", "/tv/law", "/tv/law/fraud", "/tv/lawyer", "/tv/polls", "/tv/polls/1")
HOUSEHOLD = "qilong-001"
REPO = Path(__file__).resolve().parents[1]

# The baselines: the hello-world of idle_memory plus a page shaped like a TV page
# (about 2 KB of HTML, rendered by jinja2 with autoescape, gzipped when asked).
BASELINE = '''
import sys
import jinja2
from aiohttp import web
TEMPLATE = jinja2.Environment(autoescape=True).from_string("""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{{ title }}</title>
<link rel="stylesheet" href="/static/tv.css?v=0123456789"></head>
<body class="hd simple"><div id="screen"><div id="top"><span id="brand">{{ title }}</span>
<span id="crumb">{{ household }}</span></div>
{% for id, label in tiles %}<a id="t-{{ id }}" class="f tile" data-group="tiles" \
data-key="{{ loop.index }}" href="/tv/{{ id }}" style="left:{{ 6 + loop.index0 % 3 * 29 }}%;\
top:{{ 20 + loop.index0 // 3 * 30 }}%;width:26%;height:26%"><span class="num">{{ loop.index }}\
</span><span class="label">{{ label }}</span></a>
{% endfor %}<div id="hint">{{ hint }}</div></div>
<script src="/static/tv.js?v=0123456789"></script></body></html>""")
CONTEXT = {
    "title": "村务服务 Village services",
    "household": "骑龙社区 Household <1>",
    "tiles": [(f"tile{i}", f"Service number {i} 服务") for i in range(7)],
    "hint": "Number keys open a tile directly · Red key: alarm · 数字键直接打开",
}
async def hello(request):
    return web.Response(text="Hello, world")
async def page(request):
    response = web.Response(text=TEMPLATE.render(**CONTEXT), content_type="text/html")
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        response.enable_compression(web.ContentCoding.gzip)
    return response
app = web.Application()
app.router.add_get("/", hello)
app.router.add_get("/healthz", hello)
app.router.add_get("/page", page)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
'''

# wrk's summary as one JSON line; non-2xx counted per thread, added up at the end.
WRK_SCRIPT = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) non2xx = 0 end
function response(status, headers, body)
  if status < 200 or status > 299 then non2xx = non2xx + 1 end
end
function done(summary, latency, requests)
  local bad, e = 0, summary.errors
  for _, thread in ipairs(threads) do bad = bad + thread:get("non2xx") end
  io.write(string.format('XL {"requests": %d, "seconds": %f, "errors": %d, "non_2xx": %d, '
    .. '"p50_ms": %f, "p99_ms": %f, "max_ms": %f}\\n',
    summary.requests, summary.duration / 1e6, e.connect + e.read + e.write + e.timeout, bad,
    latency:percentile(50) / 1e3, latency:percentile(99) / 1e3, latency.max / 1e3))
end
"""


@dataclasses.dataclass(frozen=True, slots=True)
class Load:
    """What one load run saw; `cpu_s` is the server's CPU time during it."""

    requests: int
    seconds: float
    errors: int
    non_2xx: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    cpu_s: float = 0.0

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def cpu_us_per_request(self) -> float:
        return self.cpu_s / max(1, self.requests) * 1e6


def load_tool() -> str:
    if os.environ.get("BENCH_LOAD") == "aiohttp" or shutil.which("wrk") is None:
        return "aiohttp"
    return "wrk"


def run_load(url: str, headers: Mapping[str, str], seconds: float, folder: Path) -> Load:
    """`CONNECTIONS` keep-alive clients asking for `url` as fast as it answers."""
    if load_tool() == "wrk":
        script = folder / "summary.lua"
        script.write_text(WRK_SCRIPT)
        # Two threads (this kind of machine has 2 cores): wrk needs a fraction of one.
        threads = min(2, CONNECTIONS)
        args = ["wrk", f"-t{threads}", f"-c{CONNECTIONS}", f"-d{seconds:g}s", "--timeout", "10s"]
        args += ["-s", str(script)]
        args += [f"-H{name}: {value}" for name, value in headers.items()]
        args.append(url)
    else:
        args = [sys.executable, "-m", "bench.tv_pages", "load", url, str(seconds)]
        args.append(json.dumps(dict(headers)))
    done = subprocess.run(
        args, cwd=REPO, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("XL ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"no summary from {args[0]}:\n{done.stdout}\n{done.stderr}")
    return Load(**json.loads(lines[-1].removeprefix("XL ")))


def measure(url: str, headers: Mapping[str, str], pid: int, folder: Path) -> Load:
    """A warm-up run, then the measured one, with the server's CPU time during it."""
    run_load(url, headers, WARMUP_S, folder)
    before = cpu_seconds(pid)
    load = run_load(url, headers, DURATION_S, folder)
    return dataclasses.replace(load, cpu_s=cpu_seconds(pid) - before)


# The aiohttp client load generator (the child process of `run_load`).


async def _client_load(url: str, seconds: float, headers: dict[str, str]) -> dict[str, float]:
    latencies: list[float] = []
    errors = non_2xx = 0
    end = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    jar = aiohttp.DummyCookieJar()  # the cookie is in `headers`; answers must not change it
    async with aiohttp.ClientSession(
        connector=connector, headers=headers, cookie_jar=jar, auto_decompress=False
    ) as session:

        async def client() -> None:
            nonlocal errors, non_2xx
            while (started := time.perf_counter()) < end:
                try:
                    async with session.get(url, allow_redirects=False) as response:
                        await response.read()
                except (aiohttp.ClientError, TimeoutError):
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - started)
                non_2xx += not 200 <= response.status < 300

        began = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(CONNECTIONS)))
        took = time.perf_counter() - began
    ordered = sorted(latencies) or [float("nan")]

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return {
        "requests": len(latencies),
        "seconds": took,
        "errors": errors,
        "non_2xx": non_2xx,
        "p50_ms": pick(0.50),
        "p99_ms": pick(0.99),
        "max_ms": ordered[-1] * 1000,
    }


def _load_main(url: str, seconds: str, headers: str) -> None:
    summary = asyncio.run(_client_load(url, float(seconds), json.loads(headers)))
    print("XL " + json.dumps(summary), flush=True)


# The servers.


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """This Python with `args`, in an environment where no XL_* of the caller's
    (a PostgreSQL URL, a config file, a broker) changes what is measured."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("XL_")}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, *args], env={**clean, **env}, stdout=out, stderr=out, cwd=REPO
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Servers:
    folder: Path
    portal: subprocess.Popen[bytes]
    portal_port: int
    baseline: subprocess.Popen[bytes]
    baseline_port: int


@contextlib.contextmanager
def servers() -> Iterator[Servers]:
    """The portal and the baselines, each in its own process, ready; all stopped and
    their temp folder removed on exit, whatever happened."""
    exit_on_sigterm()
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="xl-tv-")))
        (folder / "empty.toml").write_text("")
        portal_port, baseline_port = free_port(), free_port()
        env = {
            "XL_CONFIG": str(folder / "empty.toml"),
            "XL_DATA_DIR": str(folder / "data"),
            "XL_HTTP_HOST": "127.0.0.1",
            "XL_HTTP_PORT": str(portal_port),
            "XL_MQTT_PORT": str(free_port()),
        }
        baseline = start(["-c", BASELINE, str(baseline_port)], {}, folder / "baseline.log")
        stack.callback(stop, baseline)
        portal = start(["-m", "xueliang", "run", "--demo"], env, folder / "portal.log")
        stack.callback(stop, portal)
        try:
            wait_http(f"http://127.0.0.1:{baseline_port}/healthz")
            wait_http(f"http://127.0.0.1:{portal_port}/healthz")
            yield Servers(folder, portal, portal_port, baseline, baseline_port)
        except BaseException:
            for name in ("portal.log", "baseline.log"):
                tail = (folder / name).read_text(errors="replace").splitlines()[-30:]
                print(f"{name} ends with:", *tail, sep="\n  ")
            raise


def fetch(
    port: int, path: str, headers: Mapping[str, str]
) -> tuple[int, http.client.HTTPMessage, bytes]:
    """One GET, redirects not followed, the body as it came over the wire."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=dict(headers))
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def pair(port: int, data_dir: Path) -> str:
    """The `xl_tv` cookie of a box paired with the demo household, checked to open
    the household's home page (an unpaired box would get the pairing code page)."""
    token = derive(load_secret_key(data_dir), "demo-pair", HOUSEHOLD, length=43)
    status, headers, _ = fetch(port, f"/tv/pair/{token}", {})
    cookies = http.cookies.SimpleCookie()
    for header in headers.get_all("Set-Cookie") or []:
        cookies.load(header)
    if status != 303 or "xl_tv" not in cookies:
        raise RuntimeError(f"pairing {HOUSEHOLD} answered {status} without the xl_tv cookie")
    cookie = f"xl_tv={cookies['xl_tv'].value}"
    check_home(port, cookie)
    return cookie


def check_home(port: int, cookie: str) -> None:
    status, _, body = fetch(port, "/tv/", {"Cookie": cookie})
    if status != 200 or b'id="code"' in body or b'href="/tv/law"' not in body:
        raise RuntimeError(f"/tv/ with the session cookie is not the home page ({status})")


def post(
    port: int, path: str, form: Mapping[str, str], headers: Mapping[str, str]
) -> tuple[int, http.client.HTTPMessage, bytes]:
    """One form POST, redirects not followed."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        form_headers = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
        conn.request("POST", path, body=urlencode(form), headers=form_headers)
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def _field(name: str, body: bytes) -> str:
    found = re.search(rb'name="' + name.encode() + rb'" value="([^"]+)"', body)
    if found is None:
        raise RuntimeError(f"no {name} field in the TV form")
    return found.group(1).decode()


def _banner(port: int, cookie: str) -> int | None:
    """The alarm the home page shows (its banner), if any."""
    _, _, body = fetch(port, "/tv/", {"Cookie": cookie})
    found = re.search(rb'id="open-alarm"[^>]*href="/tv/alarm/(\d+)"', body)
    return int(found.group(1)) if found else None


def stale_pages(port: int, cookie: str) -> int:
    """The household presses its alarm on the TV, then cancels it: how many of the two
    `/tv/` pages asked for right after each did not show it (0: the page the load run
    was served from the portal's memory is fresh)."""
    headers = {"Cookie": cookie}
    _, _, confirm = fetch(port, "/tv/alarm", headers)
    form = {"csrf": _field("csrf", confirm), "nonce": _field("nonce", confirm), "kind": "panic"}
    status, answer, _ = post(port, "/tv/alarm", form, headers)
    if status != 303:
        raise RuntimeError(f"the TV alarm form answered {status}")
    location = answer["Location"]
    alarm = int(location.rsplit("/", 1)[1])
    stale = _banner(port, cookie) != alarm
    _, _, state = fetch(port, location, headers)
    status, _, _ = post(port, f"{location}/cancel", {"csrf": _field("csrf", state)}, headers)
    if status != 303:
        raise RuntimeError(f"cancelling the TV alarm answered {status}")
    return stale + (_banner(port, cookie) is not None)


def route_statuses(port: int, route: str) -> Counter[str]:
    """Requests the portal counted for one route name, by status (/metrics)."""
    _, _, body = fetch(port, "/metrics", {})
    counts: Counter[str] = Counter()
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name == "xl_http_requests_total" and sample.labels["route"] == route:
                counts[sample.labels["status"]] += int(sample.value)
    return counts


# Bytes per page.

_SUBRESOURCE = re.compile(
    rb"<(?:script|img|iframe|source|video|audio|embed)\b[^>]*?\ssrc=\"([^\"]+)\""
    rb"|<link\b[^>]*?\shref=\"([^\"]+)\""
)
_CSS_URL = re.compile(rb"url\(\s*['\"]?([^'\")]+)")


@dataclasses.dataclass(frozen=True, slots=True)
class PageCost:
    path: str
    status: int
    html_wire: int
    html_raw: int
    gzipped: bool
    assets: dict[str, int]  # URL → gzip bytes
    polls: bool  # the page asks the server again by itself (data-poll / refresh)

    @property
    def total(self) -> int:
        return self.html_wire + sum(self.assets.values())

    @property
    def requests(self) -> int:
        return 1 + len(self.assets)


def page_cost(port: int, path: str, cookie: str) -> PageCost:
    """What a box without a cache downloads to show `path`."""
    gzip_headers = {"Cookie": cookie, "Accept-Encoding": "gzip"}
    status, headers, wire = fetch(port, path, gzip_headers)
    gzipped = headers.get("Content-Encoding") == "gzip"
    html = gzip.decompress(wire) if gzipped else wire
    assets: dict[str, int] = {}
    todo = [a or b for a, b in _SUBRESOURCE.findall(html)]
    while todo:
        url = todo.pop().decode()
        if url in assets or not url.startswith("/"):
            continue
        _, asset_headers, body = fetch(port, url, gzip_headers)
        assets[url] = len(body)
        if url.split("?")[0].endswith(".css"):
            plain = gzip.decompress(body) if asset_headers.get("Content-Encoding") else body
            todo += _CSS_URL.findall(plain)
    polls = b"data-poll=" in html or b'http-equiv="refresh"' in html
    return PageCost(path, status, len(wire), len(html), gzipped, assets, polls)


# The report.


@dataclasses.dataclass(frozen=True, slots=True)
class Summary:
    """One target over the rounds: medians of rate, latencies and server CPU per
    request; failures added up."""

    rate: float
    p50_ms: float
    p99_ms: float
    failures: int
    cpu_us: float

    @classmethod
    def of(cls, loads: list[Load]) -> Summary:
        return cls(
            statistics.median(load.rate for load in loads),
            statistics.median(load.p50_ms for load in loads),
            statistics.median(load.p99_ms for load in loads),
            sum(load.errors + load.non_2xx for load in loads),
            statistics.median(load.cpu_us_per_request() for load in loads),
        )


def throughput_rows(name: str, load: Summary, hello: Summary | None) -> list[Row]:
    """Rate, latency and failures of one target, next to the hello-world's."""
    rate = p50 = p99 = aim = None
    if hello is not None:
        rate, p50, p99 = hello.rate, hello.p50_ms, hello.p99_ms
    is_portal = name == "/tv/"
    if hello is not None and is_portal:
        aim = RATIO_AIM * hello.rate
    return [
        Row(f"{name} rate", load.rate, "req/s", rate, aim, aim, higher_is_better=True),
        Row(f"{name} p50", load.p50_ms, "ms", p50),
        Row(f"{name} p99", load.p99_ms, "ms", p99, target=P99_TARGET_MS if is_portal else None),
        Row(f"{name} errors + non-2xx", load.failures, "", issue=0),
    ]


def paired_ratio_row(homes: list[Load], hellos: list[Load]) -> Row:
    """`/tv/`'s rate over the hello-world's measured just before it, median of rounds."""
    ratios = [home.rate / hello.rate for home, hello in zip(homes, hellos, strict=True)]
    return Row(
        "/tv/ ÷ hello-world rate, per round", statistics.median(ratios), "x",
        issue=RATIO_AIM, target=RATIO_AIM, higher_is_better=True,
    )  # fmt: skip


def page_rows(cost: PageCost) -> list[Row]:
    return [
        Row(f"{cost.path} gzip bytes", cost.total, "B", target=PAGE_BYTES_TARGET),
        Row(f"{cost.path} requests", cost.requests, "", target=PAGE_REQUESTS_TARGET),
    ]


def main() -> None:
    started = time.perf_counter()
    gz = {"Accept-Encoding": "gzip"}
    with servers() as run:
        cookie = pair(run.portal_port, run.folder / "data")
        base_url = f"http://127.0.0.1:{run.baseline_port}"
        machine = machine_cpu()
        tv_url = f"http://127.0.0.1:{run.portal_port}/tv/"
        hellos: list[Load] = []
        homes: list[Load] = []
        for _ in range(ROUNDS):
            hellos.append(measure(f"{base_url}/", gz, run.baseline.pid, run.folder))
            homes.append(measure(tv_url, {**gz, "Cookie": cookie}, run.portal.pid, run.folder))
        jinja = measure(f"{base_url}/page", gz, run.baseline.pid, run.folder)
        busy = machine_busy(machine)
        check_home(run.portal_port, cookie)
        stale = stale_pages(run.portal_port, cookie)
        statuses = route_statuses(run.portal_port, "tv_home")
        costs = [page_cost(run.portal_port, path, cookie) for path in PAGES]
        jinja_wire = len(fetch(run.baseline_port, "/page", gz)[2])
        jinja_raw = len(fetch(run.baseline_port, "/page", {})[2])
        warnings = _log_warnings(run.folder / "portal.log")
    hello, home = Summary.of(hellos), Summary.of(homes)
    spread = hello.p99_ms / hello.p50_ms
    rows = throughput_rows("hello-world", hello, None)
    rows += throughput_rows("jinja2 page", Summary.of([jinja]), hello)
    rows += throughput_rows("/tv/", home, hello)
    rows.append(paired_ratio_row(homes, hellos))
    rows.append(Row("/tv/ stale after the household's press, cancel", stale, "", issue=0))
    cpu = ", ".join(
        f"{name} {us:.0f} µs"
        for name, us in (
            ("hello", hello.cpu_us), ("jinja2", jinja.cpu_us_per_request()), ("/tv/", home.cpu_us)
        )
    )  # fmt: skip
    rounds = "; ".join(
        f"{a.rate:.0f} / {b.rate:.0f} req/s, p99 {a.p99_ms:.1f} / {b.p99_ms:.1f} ms"
        for a, b in zip(hellos, homes, strict=True)
    )
    print_table(
        f"TV portal throughput: {CONNECTIONS} keep-alive clients, {DURATION_S:g} s each "
        f"after {WARMUP_S:g} s warm-up, load from {load_tool()}; hello-world and /tv/ in "
        f"{ROUNDS} alternating rounds, medians (baseline: bare aiohttp hello-world, same run)",
        rows,
        [
            f"rounds, hello-world / /tv/: {rounds}",
            f"server CPU per request: {cpu}; machine busy {busy:.0%} of {os.cpu_count()} cores",
            # Little's law: closed-loop clients wait their turn, whatever the server.
            f"{CONNECTIONS} clients always waiting: p50 ≈ {CONNECTIONS} / rate; with the "
            f"hello-world's own tail (p99 = {spread:.2f} × p50), p99 ≤ {P99_TARGET_MS:g} ms "
            f"needs ≥ {CONNECTIONS * spread / P99_TARGET_MS * 1000:.0f} req/s",
            f"jinja2 baseline page: {jinja_wire} B gzip ({jinja_raw} B plain); "
            f"/tv/ as the portal counted it: {dict(sorted(statuses.items()))}",
            *_tool_caveat(),
        ],
    )
    print()
    print_table(
        "bytes per page, no cache: gzip bytes of HTML + CSS + JS, and requests",
        [row for cost in costs for row in page_rows(cost)],
        [
            *(_describe(cost) for cost in costs),
            f"portal log: {warnings}",
            f"ran {time.perf_counter() - started:.1f} s",
        ],
    )


def _describe(cost: PageCost) -> str:
    assets = ", ".join(f"{url.split('?')[0]} {size} B" for url, size in cost.assets.items())
    polls = "; polls the server by itself" if cost.polls else ""
    return (
        f"{cost.path}: {cost.status}, HTML {cost.html_wire} B "
        f"{'gzip' if cost.gzipped else 'NOT gzipped'} ({cost.html_raw} B plain); {assets}{polls}"
    )


def _tool_caveat() -> list[str]:
    if load_tool() == "wrk":
        return []
    return [
        "no wrk: the aiohttp client saturates near the hello-world's rate, so that"
        " baseline (and the ratio) is lower than with wrk (`apt-get install wrk`)"
    ]


def _log_warnings(log: Path) -> str:
    lines = log.read_text(errors="replace").splitlines()
    errors = [line for line in lines if re.search(r"\b(ERROR|CRITICAL|Traceback)\b", line)]
    # The embedded broker always warns that it is a demo broker.
    warnings = [line for line in lines if " WARNING " in line and "DEMO MQTT" not in line]
    first = (errors or warnings or ["nothing else"])[0][:160]
    return f"{len(errors)} errors, {len(warnings)} warnings beside the demo broker's; {first}"


if __name__ == "__main__":
    if sys.argv[1:2] == ["load"]:
        _load_main(*sys.argv[2:5])
    else:
        main()
