"""The TV pages in a real headless Chromium, driven only by remote-control key events
(the raw codes of HbbTV, iPanel and Huawei boxes), at 1280x720 and 640x530, with and
without JavaScript. Screenshots go to artifacts/screens/ for a person to look at."""

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
from tests.stb_portal.conftest import demo_pair_path
from xueliang.alarms import AlarmService
from xueliang.config import Settings
from xueliang.storage import Database

pytestmark = pytest.mark.slow
playwright = pytest.importorskip("playwright.sync_api")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = REPO / "artifacts" / "screens"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


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


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
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


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        missing("Chromium (Debian package chromium)")
    with playwright.sync_playwright() as p:
        # Spatial navigation is what STB browsers do natively when scripts are off.
        chromium = p.chromium.launch(
            executable_path=CHROMIUM, args=[*ARGS, "--enable-spatial-navigation"]
        )
        yield chromium
        chromium.close()


class Remote:
    """Presses keys the way a remote does: trusted key events with raw codes."""

    def __init__(self, page: Any, box: Box) -> None:
        self.page = page
        self.box = box
        self.cdp = page.context.new_cdp_session(page)

    def press(self, key: str) -> None:
        """A key that stays on the page (moving the focus)."""
        code = self.box.keys.get(key, ord(key) if len(key) == 1 else 0)
        event = {"windowsVirtualKeyCode": code}
        self.cdp.send("Input.dispatchKeyEvent", {"type": "rawKeyDown", **event})
        if code == 13:
            self.cdp.send("Input.dispatchKeyEvent", {"type": "char", "text": "\r", **event})
        self.cdp.send("Input.dispatchKeyEvent", {"type": "keyUp", **event})

    def go(self, key: str) -> None:
        """A key that opens another page: returns once it has loaded."""
        with self.page.expect_navigation(timeout=10_000):
            self.press(key)

    def focused(self) -> str:
        return str(self.page.evaluate("XL.focused() ? XL.focused().id : ''"))


def open_box(browser: Any, box: Box, size: tuple[int, int], js: bool = True) -> Any:
    context = browser.new_context(
        viewport={"width": size[0], "height": size[1]}, user_agent=box.agent,
        java_script_enabled=js, locale="zh-CN",
    )  # fmt: skip
    return context.new_page()


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


@pytest.mark.parametrize(
    ("box", "household", "size"),
    [(HBBTV, "qilong-001", (1280, 720)), (IPANEL, "anxicun-001", (640, 530)),
     (HUAWEI, "fenghuo-001", (1280, 720))],
    ids=["hbbtv-720p", "ipanel-sd", "huawei-720p"],
)  # fmt: skip
def test_remote_only_flow(
    server: Server, browser: Any, box: Box, household: str, size: tuple[int, int]
) -> None:
    page = open_box(browser, box, size)
    sd = size[0] == 640
    page.goto(server.url + demo_pair_path(server.data_dir, household))
    if sd:  # an SD box's installer picks the SD layout once, in settings
        page.goto(server.url + "/tv/settings")
        remote = Remote(page, box)
        for key in ("down", "down", "right"):
            remote.press(key)
        assert remote.focused() == "sd-on"
        remote.go("ok")
        page.goto(server.url + "/tv/")
    remote = Remote(page, box)
    assert page.evaluate("XL.platform") == box.name
    assert remote.focused() == "t-alarm"
    shot(page, f"home-{box.name}-{size[0]}x{size[1]}")

    # Move around the tiles; entering the grid again returns to the last tile.
    remote.press("right")
    assert remote.focused() == "t-cameras"
    remote.press("down")
    assert remote.focused() == "t-law"
    remote.press("left")
    assert remote.focused() == "t-polls"
    remote.press("up")
    assert remote.focused() == "t-alarm"

    # Every tile opens (number keys and OK), and Back comes home.
    for key, path in (("2", "/tv/soon/cameras"), ("3", "/tv/soon/lawyer"),
                      ("4", "/tv/soon/polls"), ("5", "/tv/law"), ("6", "/tv/alarms")):  # fmt: skip
        remote.go(key)
        assert page.url.endswith(path), (key, page.url)
        remote.go("back")
        assert page.url.endswith("/tv/")
    remote.press("down")
    remote.press("right")
    remote.go("ok")
    assert page.url.endswith("/tv/law")

    # Legal information: open an article, page down and up, back to the list.
    remote.go("3")
    assert "/tv/law/labour" in page.url
    remote.go("ok")
    article = page.url
    remote.go("pagedown")
    assert page.url.endswith("?p=2")
    remote.go("pageup")
    assert page.url.endswith("?p=1")
    remote.go("back")
    assert "/tv/law/labour" in page.url and page.url != article

    # The red key from any page asks first; Back sends nothing.
    remote.go("red")
    assert page.url.endswith("/tv/alarm")
    shot(page, f"alarm-confirm-{box.name}-{size[0]}x{size[1]}")
    remote.go("back")
    assert page.url.endswith("/tv/")
    remote.go("red")
    assert remote.focused() == "send-panic"
    remote.go("ok")
    assert "/tv/alarm/" in page.url
    alarm = int(page.url.rsplit("/", 1)[1])
    wait_text(page, "值班中心已收到")

    # Staff acknowledge it: the page follows by itself.
    server.ack(alarm, f"{household}-值班员")
    wait_text(page, f"{household}-值班员 已查看")
    shot(page, f"alarm-status-{box.name}-{size[0]}x{size[1]}")

    # Still within the grace period: the household cancels.
    remote.press("up")
    assert remote.focused() == "cancel"
    remote.go("ok")
    wait_text(page, "您家已取消")
    page.context.close()


KEYPRESS = "document.dispatchEvent(new KeyboardEvent('keypress', {keyCode: %d, which: %d}))"


def test_keypress_only_and_irkeypress_boxes(server: Server, browser: Any) -> None:
    """Some iPanel boxes send only keypress, others onirkeypress: each press acts
    once, and a keydown followed by its keypress acts once too."""
    page = open_box(browser, IPANEL, (1280, 720))
    page.goto(server.url + demo_pair_path(server.data_dir, "qilong-002"))
    page.evaluate(KEYPRESS % (4, 4))
    assert page.evaluate("XL.focused().id") == "t-cameras"
    page.evaluate("document.onirkeypress({keyCode: 4})")
    assert page.evaluate("XL.focused().id") == "t-lawyer"
    remote = Remote(page, IPANEL)
    remote.press("left")  # CDP sends keydown and Chromium no keypress for arrows
    page.evaluate(KEYPRESS % (3, 3))  # the keypress of the same physical press: ignored
    assert page.evaluate("XL.focused().id") == "t-cameras"
    page.context.close()


def test_unknown_keys_are_reported(server: Server, browser: Any) -> None:
    page = open_box(browser, HUAWEI, (1280, 720))
    page.goto(server.url + demo_pair_path(server.data_dir, "anxicun-002"))
    with page.expect_request(lambda r: "/tv/keylog?c=4321" in r.url):
        Remote(page, Box("odd", HUAWEI.agent, {"x": 4321})).press("x")
    page.context.close()


def test_alarm_without_javascript(server: Server, browser: Any) -> None:
    """A box with scripting off still raises, follows and cancels an alarm: links,
    forms and a refreshing page, moved through with the browser's own arrows."""
    page = open_box(browser, HUAWEI, (1280, 720), js=False)
    page.goto(server.url + demo_pair_path(server.data_dir, "fenghuo-002"))
    assert page.evaluate("document.activeElement.id") == "t-alarm"  # autofocus
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.endswith("/tv/alarm")
    assert page.evaluate("document.activeElement.id") == "send-panic"
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "/tv/alarm/" in page.url
    alarm = int(page.url.rsplit("/", 1)[1])
    server.ack(alarm, "烽火值班员")
    wait_text(page, "烽火值班员 已查看")  # the page refreshes itself every 5 s
    page.keyboard.press("ArrowUp")  # the browser's own spatial navigation
    assert page.evaluate("document.activeElement.id") == "cancel"
    with page.expect_navigation():
        page.keyboard.press("Enter")
    wait_text(page, "您家已取消")
    shot(page, "alarm-nojs-1280x720")
    page.context.close()
