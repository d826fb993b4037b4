"""The centre console in a real headless Chromium: a duty officer signs in, a
household's alarm appears on the board by itself (no reload) with the alarm sound on,
and one click acknowledges it; the household's TV shows who saw it."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
import requests

from tests.stb_portal.browser import Server, shot, wait_until
from tests.stb_portal.conftest import demo_pair_path
from tests.stb_portal.staff import demo_password

pytestmark = pytest.mark.slow


def tv_raises_alarm(server: Server, household: str) -> int:
    """What a paired box does when the villager presses red, then OK (form posts)."""
    with requests.Session() as box:
        box.get(server.url + demo_pair_path(server.data_dir, household), timeout=10)
        form = box.get(server.url + "/tv/alarm", timeout=10).text
        fields = dict(re.findall(r'name="(csrf|nonce|kind)" value="([^"]*)"', form))
        sent = box.post(server.url + "/tv/alarm", data=fields, timeout=10)
        match = re.search(r"/tv/alarm/(\d+)$", sent.url)
        assert match, sent.url
        return int(match.group(1))


def test_alarm_arrives_live_and_is_acknowledged_with_one_click(
    server: Server, browser: Any
) -> None:
    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on(  # failed loads are judged by their responses below
        "console",
        lambda m: (
            errors.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    # The picture of the moment may not be taken yet when the page first loads.
    page.on(
        "response",
        lambda r: (
            errors.append(f"{r.status} {r.url}")
            if r.status >= 400 and "/video/alarms/" not in r.url
            else None
        ),
    )
    page.goto(server.url + "/centre/")
    page.fill("input[name=username]", "puxing-centre")
    page.fill("input[name=password]", demo_password(server.data_dir, "puxing-centre"))
    page.click("#login button[type=submit]")
    page.wait_for_url(server.url + "/centre/")
    wait_until(page, "document.getElementById('live').dataset.state === 'live'")
    page.evaluate("window.__sameDocument = true")

    started = time.monotonic()
    alarm = tv_raises_alarm(server, "qilong-002")
    row = f"#alarm-{alarm}"
    wait_until(page, f"!!document.querySelector('{row}')")
    arrived = time.monotonic() - started
    assert arrived < 5, f"the alarm took {arrived:.1f} s to reach the board"
    assert page.evaluate("window.__sameDocument") is True  # pushed, not reloaded
    assert "李秀英家" in page.inner_text(row) and "新报警" in page.inner_text(row)
    wait_until(page, "document.body.dataset.ringing === '1'")
    shot(page, "centre-board-live")

    page.click(f"{row} a")
    page.wait_for_url(f"{server.url}/centre/alarms/{alarm}")
    assert "028-8000-0102" in page.inner_text("#household")
    page.click("button.a-acknowledge")
    page.wait_for_url(f"{server.url}/centre/alarms/{alarm}")
    assert page.inner_text("#state") == "已确认"
    shot(page, "centre-alarm-acknowledged")

    page.goto(server.url + "/centre/")
    assert "已确认" in page.inner_text(row)
    wait_until(page, "document.body.dataset.ringing === '0'")  # opened: the sound stops
    with requests.Session() as box:
        box.get(server.url + demo_pair_path(server.data_dir, "qilong-002"), timeout=10)
        status = box.get(f"{server.url}/tv/alarm/{alarm}", timeout=10).text
    assert "普兴镇综治中心" in status  # the household sees who saw it
    assert errors == []
    context.close()
