"""The TV home page costs no query and no rendering on a repeat visit, yet shows the
household's alarm as it is now: fresh after any change made in this process (a press,
a cancel, a staff action), at most the TTL late for another process's change (at once
when the event bus says so), and byte for byte the page `page()` would render."""

from __future__ import annotations

import asyncio
import gzip
import re
from pathlib import Path

from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict
from pytest_aiohttp import AiohttpClient

from stb_portal.tv import render
from stb_portal.tv import session as tv_session
from stb_portal.tv.views import HOUSEHOLDS, LATEST_ALARMS
from tests.stb_portal.conftest import Client, csrf_of, demo_pair_path
from xueliang.alarms import AlarmService, RaiseRequest
from xueliang.events import Wake
from xueliang.storage import Database
from xueliang.storage.tables import households as households_table
from xueliang.topics import Topics
from xueliang.web import ALARMS, DATABASE, EVENT_BUS

HOUSEHOLD = "qilong-001"
BANNER = re.compile(r'id="open-alarm"[^>]*href="/tv/alarm/(\d+)"')


async def banner(client: Client) -> int | None:
    """The alarm the home page shows, if any."""
    response = await client.get("/tv/")
    assert response.status == 200
    found = BANNER.search(await response.text())
    return int(found.group(1)) if found else None


def never_expire(client: Client) -> None:
    """Only invalidation can make the page fresh now (not the TTL)."""
    client.app[LATEST_ALARMS].cache.seconds = 3600
    client.app[HOUSEHOLDS].cache.seconds = 3600


async def another_process(demo_dir: Path) -> AlarmService:
    """A second alarm service on the same database: nothing tells this portal."""
    return AlarmService(Database(f"sqlite:///{demo_dir / 'xueliang.db'}"), Topics())


async def test_the_households_own_press_and_cancel_show_at_once(paired: Client) -> None:
    never_expire(paired)
    assert await banner(paired) is None  # cached: no alarm
    confirm = await (await paired.get("/tv/alarm")).text()
    nonce = re.search(r'name="nonce" value="([^"]+)"', confirm)
    assert nonce
    sent = await paired.post(
        "/tv/alarm",
        data={"csrf": csrf_of(confirm), "nonce": nonce.group(1), "kind": "panic"},
        allow_redirects=False,
    )
    location = sent.headers["Location"]
    alarm = int(location.rsplit("/", 1)[1])
    assert await banner(paired) == alarm
    status = await (await paired.get(location)).text()
    cancelled = await paired.post(
        location + "/cancel", data={"csrf": csrf_of(status)}, allow_redirects=False
    )
    assert cancelled.status == 303
    assert await banner(paired) is None


async def test_staff_actions_show_at_once(paired: Client) -> None:
    never_expire(paired)
    service = paired.app[ALARMS]
    assert await banner(paired) is None
    [raised] = await service.raise_many([RaiseRequest("tv", "medical", household=HOUSEHOLD)])
    assert await banner(paired) == raised.alarm
    await service.act(raised.alarm, "acknowledge", by="骑龙值班员", source="console")
    assert await banner(paired) == raised.alarm  # still open
    await service.act(raised.alarm, "resolve", by="骑龙值班员", source="console")
    assert await banner(paired) is None
    [again] = await service.raise_many([RaiseRequest("tv", "fire", household=HOUSEHOLD)])
    assert await banner(paired) == again.alarm


async def test_another_process_is_seen_within_the_ttl(paired: Client, demo_dir: Path) -> None:
    paired.app[LATEST_ALARMS].cache.seconds = 0.3
    elsewhere = await another_process(demo_dir)
    try:
        assert await banner(paired) is None
        [raised] = await elsewhere.raise_many([RaiseRequest("tv", "panic", household=HOUSEHOLD)])
        await asyncio.sleep(0.35)
        assert await banner(paired) == raised.alarm
        await elsewhere.act(raised.alarm, "false_alarm", by="county", source="console")
        await asyncio.sleep(0.35)
        assert await banner(paired) is None
    finally:
        await elsewhere.db.close()


class Bus:
    """The event bus as the portal sees it (xueliang.events.EventBus)."""

    def __init__(self) -> None:
        self.subscribers: list[Wake] = []

    def subscribe(self, wake: Wake) -> None:
        self.subscribers.append(wake)

    def wake_all(self) -> None:
        for wake in self.subscribers:
            wake()


async def test_the_event_bus_makes_another_process_fresh_at_once(
    aiohttp_client: AiohttpClient, portal_app: object, demo_dir: Path
) -> None:
    from aiohttp import web

    assert isinstance(portal_app, web.Application)
    bus = Bus()
    portal_app[EVENT_BUS] = bus
    client = await aiohttp_client(portal_app)
    assert (
        await client.get(demo_pair_path(demo_dir, HOUSEHOLD), allow_redirects=False)
    ).status == 303
    never_expire(client)
    elsewhere = await another_process(demo_dir)
    try:
        assert await banner(client) is None
        [raised] = await elsewhere.raise_many([RaiseRequest("tv", "panic", household=HOUSEHOLD)])
        assert await banner(client) is None  # the TTL is an hour and nobody said
        bus.wake_all()  # what the MQTT bus does when the change is published
        assert await banner(client) == raised.alarm
    finally:
        await elsewhere.db.close()


async def test_the_name_is_at_most_the_ttl_old(paired: Client) -> None:
    paired.app[HOUSEHOLDS].cache.seconds = 0.2
    assert "王德明家" in await (await paired.get("/tv/")).text()
    async with paired.app[DATABASE].transaction() as conn:
        await conn.execute(
            households_table.update()
            .where(households_table.c.id == HOUSEHOLD)
            .values(name="王德明 & 家")
        )
    await asyncio.sleep(0.25)
    page = await (await paired.get("/tv/")).text()
    assert "王德明 &amp; 家" in page and "王德明家" not in page


PREFERENCES = [
    {"xl_lang": lang, "xl_simple": simple, "xl_sd": sd}
    for lang in ("zh_CN", "en")
    for simple in ("1", "0")
    for sd in ("1", "0")
]


async def test_the_cached_page_is_what_page_renders(paired: Client) -> None:
    """Same bytes as `render.page` for every preference and alarm state, served by
    one process in turn (rendered, then from the cache), plain and gzipped, with the
    same headers."""
    app = paired.app
    token = paired.session.cookie_jar.filter_cookies(paired.make_url("/tv/"))["xl_tv"].value
    for alarm in (False, True):
        if alarm:
            await app[ALARMS].raise_many([RaiseRequest("tv", "panic", household=HOUSEHOLD)])
        for _ in range(2):
            for cookies in PREFERENCES:
                paired.session.cookie_jar.update_cookies(cookies)
                await check_same_as_page(paired, "; ".join(
                    f"{k}={v}" for k, v in {**cookies, "xl_tv": token}.items()
                ), alarm)  # fmt: skip
    assert len(app[render.RENDERED]) == 2 * len(PREFERENCES)


async def check_same_as_page(client: Client, cookie: str, alarm: bool) -> None:
    app = client.app
    request = make_mocked_request("GET", "/tv/", headers=CIMultiDict(Cookie=cookie), app=app)
    session = await tv_session.current(request)
    assert session is not None
    household = await app[HOUSEHOLDS].get(HOUSEHOLD)
    latest = await app[LATEST_ALARMS].get(HOUSEHOLD)
    assert (latest is not None) == alarm
    expected = render.page(
        request, "tv/home.html", session=session, household=household, open_alarm=latest,
        today_booking=None,
    )  # fmt: skip
    assert isinstance(expected.body, bytes)
    plain = await client.get("/tv/", headers={"Accept-Encoding": "identity"})
    assert await plain.read() == expected.body
    assert "Content-Encoding" not in plain.headers
    zipped = await client.get("/tv/", headers={"Accept-Encoding": "gzip"}, auto_decompress=False)
    assert gzip.decompress(await zipped.read()) == expected.body
    assert zipped.headers["Content-Encoding"] == "gzip"
    for response in (plain, zipped):
        assert response.headers["Content-Type"] == "text/html; charset=utf-8"
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["Vary"] == "Accept-Encoding, Cookie"


async def test_forged_cookies_are_not_remembered(paired: Client) -> None:
    """Only genuine tokens are kept (a forger cannot fill the memory with guesses)."""
    await paired.get("/tv/")
    genuine = paired.app[tv_session.TOKENS].copy()
    assert [s.household for s in genuine.values()] == [HOUSEHOLD]
    paired.session.cookie_jar.clear()
    for n in range(20):
        paired.session.cookie_jar.update_cookies({"xl_tv": f"cWlsb25nLTAwMXww.{n}.AAAA"})
        assert "王德明家" not in await (await paired.get("/tv/")).text()
    assert paired.app[tv_session.TOKENS] == genuine


def test_the_render_cache_is_bounded() -> None:
    cache = render.RenderCache(max_items=2)
    for n in range(5):
        cache.put(n, render.Rendered(b"%d" % n, b""))
    assert len(cache) == 2 and cache.get(0) is None and cache.get(4) is not None
