"""Idle memory of `xueliang run --demo`: RSS of the process tree (ffmpeg excluded),
next to a bare aiohttp hello-world measured in the same run. Target: under 200 MB."""

from __future__ import annotations

import statistics
import tempfile
import time

from bench.procs import free_port, start_python, stop, tree_rss, wait_http

HELLO = """
import sys
from aiohttp import web
async def hello(request):
    return web.Response(text="hello")
app = web.Application()
app.router.add_get("/healthz", hello)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
"""
SETTLE_S = 5.0
SAMPLES = 10
TARGET_MB = 200


def measure(args: list[str], env: dict[str, str], port: int) -> float:
    """Median RSS in MB over a few seconds, once the process has settled."""
    process = start_python(args, env)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz")
        time.sleep(SETTLE_S)
        samples = []
        for _ in range(SAMPLES):
            samples.append(tree_rss(process.pid, exclude=("ffmpeg",)) / 2**20)
            time.sleep(0.5)
        return statistics.median(samples)
    finally:
        stop(process)


def main() -> None:
    port = free_port()
    baseline = measure(["-c", HELLO, str(port)], {}, port)
    with tempfile.TemporaryDirectory() as data:
        port = free_port()
        env = {
            "XL_DATA_DIR": data,
            "XL_HTTP_HOST": "127.0.0.1",
            "XL_HTTP_PORT": str(port),
            "XL_MQTT_PORT": str(free_port()),
        }
        xueliang = measure(["-m", "xueliang", "run", "--demo"], env, port)
    print("idle memory (RSS of the process tree, median of 10 samples)")
    print(f"  bare aiohttp hello-world      {baseline:7.1f} MB")
    print(f"  xueliang run --demo           {xueliang:7.1f} MB  ({xueliang / baseline:.2f}x)")
    verdict = "within" if xueliang <= TARGET_MB else "OVER"
    print(f"  target                        {TARGET_MB:7.1f} MB  ({verdict})")


if __name__ == "__main__":
    main()
