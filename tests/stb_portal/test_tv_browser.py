"""The TV pages in a real headless Chromium, driven only by remote-control key events
(the raw codes of HbbTV, iPanel and Huawei boxes), at 1280x720 and 640x530, with and
without JavaScript. Screenshots go to artifacts/screens/ for a person to look at."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.stb_portal.browser import (
    HBBTV,
    HUAWEI,
    IPANEL,
    Box,
    Remote,
    Server,
    open_box,
    shot,
    wait_focus,
    wait_text,
)
from tests.stb_portal.conftest import demo_pair_path

pytestmark = pytest.mark.slow
playwright = pytest.importorskip("playwright.sync_api")


def camera_flow(page: Any, remote: Remote, box: Box, size: tuple[int, int]) -> None:
    assert remote.focused() == "c-qilong-square"
    remote.go("1")
    assert page.url.endswith("/tv/cameras/qilong-square")
    player = page.evaluate("XL.player")
    assert player in ("hls", "snapshots"), player  # no middleware player in Chromium
    page.wait_for_function(
        "document.querySelector('#player img, #player video') !== null", timeout=10_000
    )
    if player == "snapshots":
        page.wait_for_function("document.getElementById('still').naturalWidth > 0", timeout=20_000)
    shot(page, f"camera-{box.name}-{size[0]}x{size[1]}")
    remote.go("back")
    assert page.url.endswith("/tv/cameras")
    remote.go("back")
    assert page.url.endswith("/tv/")


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
    for key, path in (("2", "/tv/cameras"), ("3", "/tv/lawyer"),
                      ("4", "/tv/polls"), ("5", "/tv/law"), ("6", "/tv/alarms")):  # fmt: skip
        remote.go(key)
        assert page.url.endswith(path), (key, page.url)
        remote.go("back")
        assert page.url.endswith("/tv/")
    remote.press("down")
    remote.press("right")
    remote.go("ok")
    assert page.url.endswith("/tv/law")
    remote.go("back")

    # The village's cameras: a mosaic and a list; a number plays one; Back returns.
    remote.go("2")
    if not household.startswith("qilong"):  # only 骑龙社区 has a public camera
        assert remote.focused() == "home"
        remote.go("back")
    else:
        camera_flow(page, remote, box, size)
    remote.go("5")

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


def test_a_late_keypress_is_still_the_same_press(server: Server, browser: Any) -> None:
    """A busy box may deliver a press's keypress long after its keydown: until the
    keyup it is the same press (acting twice would submit a form twice)."""
    page = open_box(browser, IPANEL, (1280, 720))
    page.goto(server.url + demo_pair_path(server.data_dir, "anxicun-002"))
    remote = Remote(page, IPANEL)
    event = {"windowsVirtualKeyCode": 4}  # iPanel's right arrow
    remote.cdp.send("Input.dispatchKeyEvent", {"type": "rawKeyDown", **event})
    assert remote.focused() == "t-cameras"
    time.sleep(0.6)
    page.evaluate(KEYPRESS % (4, 4))  # late, but before the keyup: ignored
    assert remote.focused() == "t-cameras"
    remote.cdp.send("Input.dispatchKeyEvent", {"type": "keyUp", **event})
    time.sleep(0.6)
    page.evaluate(KEYPRESS % (4, 4))  # after the keyup: a press of its own
    assert remote.focused() == "t-lawyer"
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
    # Chromium runs autofocus at a rendering step, which may come after "load".
    wait_focus(page, "t-alarm")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.endswith("/tv/alarm")
    wait_focus(page, "send-panic")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "/tv/alarm/" in page.url
    alarm = int(page.url.rsplit("/", 1)[1])
    server.ack(alarm, "烽火值班员")
    wait_text(page, "烽火值班员 已查看")  # the page refreshes itself every 5 s
    wait_focus(page, "home")
    page.keyboard.press("ArrowUp")  # the browser's own spatial navigation
    assert page.evaluate("document.activeElement.id") == "cancel"
    with page.expect_navigation():
        page.keyboard.press("Enter")
    wait_text(page, "您家已取消")
    shot(page, "alarm-nojs-1280x720")
    page.context.close()
