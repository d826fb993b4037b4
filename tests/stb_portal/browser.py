"""What the browser tests share: `xueliang run --demo` in a process of its own, the
Debian Chromium driven by Playwright, screenshots for people to look at."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bench.procs import free_port, wait_http
from tests.helpers import REPO, missing
from xueliang.alarms import AlarmService
from xueliang.config import Settings
from xueliang.storage import Database

playwright = pytest.importorskip("playwright.sync_api")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = REPO / "artifacts" / "screens"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


@dataclass
class Server:
    url: str
    data_dir: Path

    def ack(self, alarm: int, by: str) -> None:
        """What a centre does from its console: through the same domain service."""

        async def go() -> None:
            settings = Settings.model_validate({"data_dir": str(self.data_dir)})
            db = Database(settings.database_url)
            try:
                await AlarmService.from_settings(db, settings).act(
                    alarm, "acknowledge", by=by, source="console"
                )
            finally:
                await db.close()

        # Playwright's sync API owns this thread's event loop: use another thread.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, go()).result(timeout=30)


def run_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`xueliang run --demo`, as a household's county runs it."""
    data_dir = tmp_path_factory.mktemp("tv") / "var"
    port = free_port()
    env = {**os.environ, "XL_DATA_DIR": str(data_dir), "XL_HTTP_HOST": "127.0.0.1",
           "XL_HTTP_PORT": str(port), "XL_MQTT_PORT": str(free_port())}  # fmt: skip
    log = (data_dir.parent / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "xueliang", "run", "--demo"], env=env, stdout=log, stderr=log
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", timeout=60)
        yield Server(f"http://127.0.0.1:{port}", data_dir)
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def launch_chromium() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        missing("Chromium (Debian package chromium)")
    with playwright.sync_playwright() as p:
        # Spatial navigation is what STB browsers do natively when scripts are off.
        chromium = p.chromium.launch(
            executable_path=CHROMIUM, args=[*ARGS, "--enable-spatial-navigation"]
        )
        yield chromium
        chromium.close()


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def wait_text(page: Any, text: str, timeout_s: float = 12) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if text in page.content():
                return
        except playwright.Error:
            pass  # the page is reloading
        time.sleep(0.2)
    raise AssertionError(f"{text!r} not shown; page: {page.content()[:2000]}")
