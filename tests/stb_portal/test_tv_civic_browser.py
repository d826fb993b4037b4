"""The family lawyer and the polls in a real headless Chromium, driven only by the raw
key codes of HbbTV, iPanel and Huawei remotes: book a slot, find it in "my bookings",
cancel it; vote, change the vote, see the results after the close."""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import Any

import pytest
from sqlalchemy import Connection

from tests.stb_portal.browser import HBBTV, HUAWEI, IPANEL, Box, Remote, Server, open_box, shot
from tests.stb_portal.conftest import demo_pair_path
from xueliang import bookings, polls
from xueliang.geography import Scope
from xueliang.storage.types import utcnow

pytestmark = pytest.mark.slow
playwright = pytest.importorskip("playwright.sync_api")


def pair(
    browser: Any, server: Server, box: Box, household: str, size: tuple[int, int]
) -> tuple[Any, Remote]:
    page = open_box(browser, box, size)
    if size[0] == 640:  # an SD box's installer picked the SD layout once
        page.context.add_cookies([{"name": "xl_sd", "value": "1", "url": server.url + "/tv/"}])
    page.goto(server.url + demo_pair_path(server.data_dir, household))
    assert page.url.endswith("/tv/")
    return page, Remote(page, box)


@pytest.mark.parametrize(
    ("box", "household", "size"),
    [(HBBTV, "qilong-001", (1280, 720)), (IPANEL, "qilong-002", (640, 530))],
    ids=["hbbtv-720p", "ipanel-sd"],
)  # fmt: skip
def test_book_and_cancel_with_the_remote(
    server: Server, browser: Any, box: Box, household: str, size: tuple[int, int]
) -> None:
    page, remote = pair(browser, server, box, household, size)
    name = f"{box.name}-{size[0]}x{size[1]}"
    remote.go("3")  # the family lawyer tile
    assert page.url.endswith("/tv/lawyer")
    first = remote.focused()
    assert first.startswith("s-"), first  # the earliest free time has the focus
    remote.press("right")
    second = remote.focused()
    assert second.startswith("s-") and second != first
    shot(page, f"lawyer-{name}")
    remote.go("ok")
    assert "/tv/lawyer/slot/lawyer-zhou/" in page.url
    assert remote.focused() == "topic-family"
    remote.go("2")  # number key: land and housing
    assert page.url.endswith("/land")
    assert remote.focused() == "book"
    shot(page, f"lawyer-confirm-{name}")
    remote.go("ok")
    assert "/tv/lawyer/bookings/" in page.url and page.query_selector("#booked")
    booking = int(page.url.split("/tv/lawyer/bookings/")[1].split("?")[0])
    shot(page, f"lawyer-booked-{name}")

    # Back: my bookings, with the new one; OK opens it again.
    remote.go("back")
    assert page.url.endswith("/tv/lawyer/bookings")
    assert remote.focused() == f"b-{booking}"
    remote.go("ok")
    assert page.url.endswith(f"/tv/lawyer/bookings/{booking}")

    # Cancel: move to the button, choose a reason; Back on the way would keep it.
    remote.press("left")
    assert remote.focused() == "cancel"
    remote.go("ok")
    assert remote.focused() == "reason-cannot_come"
    remote.go("back")
    assert page.url.endswith(f"/tv/lawyer/bookings/{booking}")
    remote.press("left")
    remote.go("ok")
    remote.press("right")
    assert remote.focused() == "reason-solved"
    remote.go("ok")
    assert page.url.endswith(f"/tv/lawyer/bookings/{booking}")
    assert "已取消" in page.content() and page.query_selector("#cancel") is None
    found = server.run_write(partial(bookings.get, id=booking))
    assert found.state == "cancelled" and found.cancel_reason == "solved"
    page.context.close()


def _close(conn: Connection, title: str) -> int:
    ident = next(p.id for p in polls.in_scope(conn, Scope("county", "xinjin")) if p.title == title)
    polls.close(conn, ident, scope=Scope("county", "xinjin"), now=utcnow())
    return ident


@pytest.mark.parametrize(
    ("box", "household", "size"),
    [(HUAWEI, "anxicun-001", (1280, 720)), (HBBTV, "anxicun-002", (640, 530))],
    ids=["huawei-720p", "hbbtv-sd"],
)  # fmt: skip
def test_vote_change_and_results(
    server: Server, browser: Any, box: Box, household: str, size: tuple[int, int]
) -> None:
    """A poll of 安西村 for this test alone (the demo's polls are 骑龙's and 普兴's)."""
    name = f"{box.name}-{size[0]}x{size[1]}"
    title = f"测试征询 {name}"
    now = utcnow()
    data = polls.checked({
        "title": title, "village": "anxicun", "opens_at": now,
        "closes_at": now + timedelta(days=30),
        "questions": [{"text": "村道先修哪一段？", "options": ["东段", "西段", "南段"]}],
    })  # fmt: skip
    ident = server.run_write(
        partial(polls.create, data=data, scope=Scope("county", "xinjin"), by="t", now=now)
    )
    page, remote = pair(browser, server, box, household, size)
    remote.go("4")  # the polls tile
    assert page.url.endswith("/tv/polls")
    assert remote.focused() == f"p-{ident}"
    remote.go("ok")
    question = page.evaluate("document.querySelectorAll('[id^=o-]').length")
    assert question == 3
    shot(page, f"poll-question-{name}")
    remote.press("down")
    remote.go("ok")  # 西段 → the confirmation
    assert "/confirm" in page.url and "西段" in page.content()
    assert remote.focused() == "send"
    remote.go("ok")
    assert page.query_selector("#thanks") and "西段" in page.content()
    shot(page, f"poll-voted-{name}")

    # Change the vote: the current answer has the focus; move down to 南段.
    remote.press("left")
    assert remote.focused() == "change"
    remote.go("ok")
    assert "row chosen" in (page.get_attribute(f"#{remote.focused()}", "class") or "")
    remote.press("down")
    remote.go("ok")
    remote.go("ok")
    assert page.query_selector("#thanks") and "南段" in page.content()
    counted = server.run_write(partial(polls.tally, poll_id=ident))
    assert counted.voters == 1 and sum(counted.counts.values()) == 1

    # Closed by the village: the results, as big bars.
    server.run_write(partial(_close, title=title))
    page.reload()
    assert "本次征询已结束" in page.content()
    assert page.evaluate("document.querySelectorAll('.bar').length") == 3
    shot(page, f"poll-results-{name}")
    page.context.close()
