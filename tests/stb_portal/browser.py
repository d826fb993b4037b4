"""What the browser tests share: `xueliang run --demo` in a process of its own, the
Debian Chromium driven by Playwright, screenshots for people to look at."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import Connection

from bench.procs import free_port, wait_http
from tests.helpers import REPO, missing
from xueliang.alarms import AlarmService
from xueliang.config import Settings
from xueliang.storage import Database

playwright = pytest.importorskip("playwright.sync_api")
T = TypeVar("T")

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

    def run_write(self, work: Callable[[Connection], T]) -> T:
        """`work` as one write transaction on the server's database (what staff do
        from the console, through the same domain code)."""

        async def go() -> T:
            settings = Settings.model_validate({"data_dir": str(self.data_dir)})
            db = Database(settings.database_url)
            try:
                return await db.run_write(work)
            finally:
                await db.close()

        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, go()).result(timeout=30)


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


def wait_until(page: Any, script: str, timeout_s: float = 10) -> None:
    """Until `script` is true in the page. Polled from here with `evaluate`: the
    console's Content-Security-Policy forbids the eval that wait_for_function uses."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if page.evaluate(script):
                return
        except playwright.Error:
            pass  # the page is reloading
        time.sleep(0.1)
    raise AssertionError(f"{script!r} still false; page: {page.content()[:2000]}")


def wait_focus(page: Any, element_id: str) -> None:
    """Until the element with that id has the focus (the page's own, not XL's)."""
    wait_until(page, f"document.activeElement && document.activeElement.id === {element_id!r}")


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


@dataclass(frozen=True)
class Box:
    """A kind of set-top box: its user agent and the raw codes of its remote."""

    name: str
    agent: str
    keys: dict[str, int]


ARROWS = {"left": 37, "up": 38, "right": 39, "down": 40, "ok": 13}
HBBTV = Box(
    "hbbtv",
    "Mozilla/5.0 (Linux armv7l) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HbbTV/1.5.1 (+DRM;Changhong;STB;1.0;;)",
    {**ARROWS, "back": 461, "red": 403, "pagedown": 34, "pageup": 33},
)
IPANEL = Box(
    "ipanel",
    "Mozilla/5.0 (X11; Linux) AppleWebKit/534.34 (KHTML, like Gecko) iPanel/3.0 Safari/534.34",
    {"up": 1, "down": 2, "left": 3, "right": 4, "ok": 13, "back": 340, "red": 275,
     "pagedown": 373, "pageup": 372},
)  # fmt: skip
HUAWEI = Box(
    "huawei",
    "Mozilla/5.0 (X11; Linux; Huawei EC6108V9) AppleWebKit/534.34 (KHTML, like Gecko)",
    {**ARROWS, "back": 8, "red": 275, "pagedown": 34, "pageup": 33},
)


class Remote:
    """Presses keys the way a remote does: trusted key events with raw codes."""

    def __init__(self, page: Any, box: Box) -> None:
        self.page = page
        self.box = box
        self.cdp = page.context.new_cdp_session(page)

    def press(self, key: str, *, char: bool = True) -> None:
        """A key that stays on the page (moving the focus); OK comes with its keypress
        (char), which the page must not take for a second press."""
        code = self.box.keys.get(key, ord(key) if len(key) == 1 else 0)
        event = {"windowsVirtualKeyCode": code}
        self.cdp.send("Input.dispatchKeyEvent", {"type": "rawKeyDown", **event})
        if code == 13 and char:
            self.cdp.send("Input.dispatchKeyEvent", {"type": "char", "text": "\r", **event})
        self.cdp.send("Input.dispatchKeyEvent", {"type": "keyUp", **event})

    def go(self, key: str) -> None:
        """A key that opens another page: returns once it has loaded. Without the char:
        on a box the keypress follows its keydown at once, on the page it was pressed
        on, but CDP sends it separately, and on a busy machine it could land on the
        next page as a press of its own."""
        with self.page.expect_navigation(timeout=10_000):
            self.press(key, char=False)

    def focused(self) -> str:
        return str(self.page.evaluate("XL.focused() ? XL.focused().id : ''"))


def open_box(browser: Any, box: Box, size: tuple[int, int], js: bool = True) -> Any:
    context = browser.new_context(
        viewport={"width": size[0], "height": size[1]}, user_agent=box.agent,
        java_script_enabled=js, locale="zh-CN",
    )  # fmt: skip
    return context.new_page()
