"""The TV pages over HTTP: pairing, sessions, the alarm forms, legal information, and
everything a hostile box or a forged cookie might try."""

from __future__ import annotations

import asyncio
import gzip
import logging
import re
from pathlib import Path

import pytest
from sqlalchemy import select

from stb_portal.tv import session as tv_session
from tests.stb_portal.conftest import Client, csrf_of, demo_pair_path
from xueliang import cameras, households, law, pairing
from xueliang.alarms import RaiseRequest
from xueliang.errors import NotFound
from xueliang.storage import Database
from xueliang.storage.tables import alarms
from xueliang.storage.tables import households as households_table
from xueliang.web import ALARMS, DATABASE


async def test_unpaired_box_shows_a_code_the_centre_can_bind(tv: Client) -> None:
    """A box without a link shows six digits; once the duty centre binds them, the
    same box (and only it) opens the household's pages."""
    page = await (await tv.get("/tv/")).text()
    code = "".join(re.findall(r"<span>(\d)</span>", page))
    assert len(code) == 6
    assert 'http-equiv="refresh"' in page
    again = await (await tv.get("/tv/")).text()
    assert "".join(re.findall(r"<span>(\d)</span>", again)) == code  # same box, same code
    async with tv.app[DATABASE].transaction() as conn:
        await pairing.bind(conn, code, "anxicun-001", by="anxicun-duty")
    response = await tv.get("/tv/", allow_redirects=False)
    assert response.status == 303
    home = await (await tv.get("/tv/")).text()
    assert "张国强家" in home
    with pytest.raises(NotFound):  # the code is used up
        async with tv.app[DATABASE].transaction() as conn:
            await pairing.bind(conn, code, "anxicun-001", by="anxicun-duty")


async def test_pairing_link_binds_with_a_signed_httponly_cookie(tv: Client, demo_dir: Path) -> None:
    response = await tv.get(demo_pair_path(demo_dir, "qilong-002"), allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/tv/"
    cookie = response.cookies["xl_tv"]
    assert cookie["httponly"] and cookie["path"] == "/tv" and cookie["samesite"] == "Lax"
    assert "李秀英家" in await (await tv.get("/tv/")).text()


async def test_reissued_link_unpairs_old_boxes(
    paired: Client, demo_dir: Path, portal_app: object
) -> None:
    """A lost box or a leaked link: re-issuing makes the old link stop working at
    once, and every box paired with it within the session cache's few seconds."""
    old_link = demo_pair_path(demo_dir, "qilong-001")
    paired.app[tv_session.GENERATIONS].seconds = 0.2
    assert "王德明家" in await (await paired.get("/tv/")).text()
    db = paired.app[DATABASE]
    async with db.transaction() as conn:
        await households.reissue_pair_token(conn, "qilong-001")
    await asyncio.sleep(0.25)
    home = await (await paired.get("/tv/")).text()
    assert "王德明家" not in home and "<span>" in home  # back to the pairing code
    response = await paired.get(old_link, allow_redirects=False)
    assert response.status == 404


@pytest.mark.parametrize(
    "cookie",
    [
        "garbage",
        "cWlsb25nLTAwMXww.1.AAAA",  # qilong-001|0 with a made-up signature
        "x" * 5000,
        "",
    ],
)
async def test_forged_cookies_are_unpaired(tv: Client, cookie: str) -> None:
    tv.session.cookie_jar.update_cookies({"xl_tv": cookie})
    page = await (await tv.get("/tv/")).text()
    assert "王德明家" not in page
    response = await tv.get("/tv/alarm", allow_redirects=False)
    assert response.status == 303


async def test_a_cookie_signed_for_another_purpose_is_refused(tv: Client) -> None:
    from xueliang.signing import sign
    from xueliang.web import SECRET_KEY

    forged = sign(tv.app[SECRET_KEY], "video-url", "qilong-001|0")
    tv.session.cookie_jar.update_cookies({"xl_tv": forged})
    assert (await tv.get("/tv/alarm", allow_redirects=False)).status == 303


async def test_alarm_from_the_tv(paired: Client) -> None:
    """Confirm page, form post, then the alarm's own page: the same service as buttons."""
    confirm = await (await paired.get("/tv/alarm")).text()
    assert 'action="/tv/alarm"' in confirm and 'data-red=""' in confirm
    nonce = re.search(r'name="nonce" value="([^"]+)"', confirm)
    assert nonce
    form = {"csrf": csrf_of(confirm), "nonce": nonce.group(1), "kind": "medical"}
    response = await paired.post("/tv/alarm", data=form, allow_redirects=False)
    assert response.status == 303
    location = response.headers["Location"]
    alarm_id = int(location.rsplit("/", 1)[1])
    again = await paired.post("/tv/alarm", data=form, allow_redirects=False)
    assert again.headers["Location"] == location  # a double OK is one alarm
    page = await (await paired.get(location)).text()
    assert "值班中心已收到" in page and "医疗" in page
    payload = await paired.app[ALARMS].payload(alarm_id)
    assert (payload["source"], payload["kind"], payload["household"]["id"]) == (
        "tv", "medical", "qilong-001"
    )  # fmt: skip
    await paired.app[ALARMS].act(alarm_id, "acknowledge", by="骑龙值班员", source="console")
    page = await (await paired.get(location)).text()
    assert "骑龙值班员 已查看" in page
    state = await (await paired.get(location + ".json")).json()
    assert state["state"] == "acknowledged"


async def test_cancel_within_grace_period(paired: Client) -> None:
    confirm = await (await paired.get("/tv/alarm")).text()
    nonce = re.search(r'name="nonce" value="([^"]+)"', confirm)
    assert nonce
    response = await paired.post(
        "/tv/alarm", data={"csrf": csrf_of(confirm), "nonce": nonce.group(1), "kind": "panic"},
        allow_redirects=False,
    )  # fmt: skip
    location = response.headers["Location"]
    page = await (await paired.get(location)).text()
    cancelled = await paired.post(
        location + "/cancel", data={"csrf": csrf_of(page)}, allow_redirects=False
    )
    assert cancelled.status == 303
    assert "您家已取消" in await (await paired.get(location)).text()


async def test_forms_need_their_csrf_token(paired: Client) -> None:
    """Another site (or a stale page) cannot make the TV send an alarm."""
    for data in ({"nonce": "abcdefgh12", "kind": "panic"},
                 {"csrf": "forged-token", "nonce": "abcdefgh12", "kind": "panic"},
                 {"csrf": "令牌", "nonce": "abcdefgh12", "kind": "panic"}):  # fmt: skip
        response = await paired.post("/tv/alarm", data=data, allow_redirects=False)
        assert response.status == 403
    assert (await paired.post("/tv/settings", data={"lang": "en"})).status == 403
    db: Database = paired.app[DATABASE]
    async with db.read() as conn:
        assert (await conn.execute(select(alarms.c.id))).first() is None


@pytest.mark.parametrize(
    ("kind", "nonce"),
    [("intrusion", "abcdefgh12"), ("<b>", "abcdefgh12"), ("panic", "short"),
     ("panic", "x" * 5000), ("panic", "a/b/c/d/e/f")],
)  # fmt: skip
async def test_hostile_alarm_fields(paired: Client, kind: str, nonce: str) -> None:
    csrf = csrf_of(await (await paired.get("/tv/alarm")).text())
    response = await paired.post(
        "/tv/alarm", data={"csrf": csrf, "nonce": nonce, "kind": kind}, allow_redirects=False
    )
    assert response.status == 400


async def test_another_households_alarm_does_not_exist(paired: Client) -> None:
    request = RaiseRequest("tv", "panic", household="fenghuo-002")
    [other] = await paired.app[ALARMS].raise_many([request])
    for path in (f"/tv/alarm/{other.alarm}", f"/tv/alarm/{other.alarm}.json", "/tv/alarm/99999",
                 "/tv/alarm/abc", "/tv/alarm/" + "9" * 40):  # fmt: skip
        assert (await paired.get(path)).status == 404
    page = await (await paired.get(f"/tv/alarm/{other.alarm}")).text()
    csrf = csrf_of(await (await paired.get("/tv/alarm")).text())
    response = await paired.post(f"/tv/alarm/{other.alarm}/cancel", data={"csrf": csrf})
    assert response.status == 404
    assert "赵淑芬" not in page
    state = await paired.app[ALARMS].payload(other.alarm)
    assert state["state"] == "received"


async def test_names_are_escaped(paired: Client) -> None:
    db: Database = paired.app[DATABASE]
    async with db.transaction() as conn:
        await conn.execute(
            households_table.update()
            .where(households_table.c.id == "qilong-001")
            .values(name="<script>alert(1)</script>")
        )
    page = await (await paired.get("/tv/")).text()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


async def test_legal_information_is_paged(paired: Client) -> None:
    index = await (await paired.get("/tv/law")).text()
    for category in law.CATEGORIES:
        assert f'href="/tv/law/{category}"' in index
    listing = await (await paired.get("/tv/law/fraud")).text()
    link = re.search(r'href="(/tv/law/fraud/[a-z0-9-]+)"', listing)
    assert link
    first = await (await paired.get(link.group(1))).text()
    assert "起施行" in first and "data-pagedown" in first
    assert "data-pageup" not in first
    last = await (await paired.get(link.group(1) + "?p=999")).text()
    assert "data-pageup" in last and "data-pagedown" not in last
    assert (await paired.get("/tv/law/nonsense")).status == 404
    assert (await paired.get("/tv/law/land/" + link.group(1).rsplit("/", 1)[1])).status == 404


async def test_settings_switch_language_and_simple_mode(paired: Client) -> None:
    page = await (await paired.get("/tv/settings")).text()
    response = await paired.post(
        "/tv/settings", data={"csrf": csrf_of(page), "lang": "en"}, allow_redirects=False
    )
    assert response.status == 303
    home = await (await paired.get("/tv/")).text()
    assert "One-key alarm" in home and 'class="hd simple"' in home
    await paired.post("/tv/settings", data={"csrf": csrf_of(page), "simple": "0"})
    home = await (await paired.get("/tv/")).text()
    assert 'class="hd"' in home and "t-settings" in home  # more tiles, smaller text
    await paired.post("/tv/settings", data={"csrf": csrf_of(page), "lang": "klingon"})
    assert "One-key alarm" in await (await paired.get("/tv/")).text()


async def test_key_log_is_rate_limited(tv: Client, caplog: pytest.LogCaptureFixture) -> None:
    """Unknown remote keys reach the log so the key tables can grow, but a box
    cannot fill the disk."""
    caplog.set_level(logging.INFO)
    for _ in range(30):
        assert (await tv.get("/tv/keylog?c=9999&t=keydown")).status == 204
    assert (await tv.get("/tv/keylog?c=<script>&t=keydown")).status == 204
    assert caplog.text.count("unknown TV key code 9999") == 10
    assert "<script>" not in caplog.text


async def test_static_files_are_cached_and_compressed(paired: Client) -> None:
    home = await (await paired.get("/tv/")).text()
    url = re.search(r'src="(/tv/static/tv\.js\?v=\w+)"', home)
    assert url
    response = await paired.get(url.group(1), headers={"Accept-Encoding": "gzip"})
    assert response.headers["Content-Encoding"] == "gzip"
    assert "immutable" in response.headers["Cache-Control"]
    etag = response.headers["ETag"]
    again = await paired.get(url.group(1), headers={"If-None-Match": etag})
    assert again.status == 304
    assert (await paired.get("/tv/static/../../secret_key")).status == 404


PAGES = ["/tv/", "/tv/alarm", "/tv/alarms", "/tv/law", "/tv/law/fraud", "/tv/settings",
         "/tv/lawyer", "/tv/lawyer/bookings", "/tv/polls", "/tv/polls/1", "/tv/cameras",
         "/tv/cameras/qilong-square"]  # fmt: skip


@pytest.mark.parametrize("path", PAGES)
async def test_page_budget(paired: Client, path: str) -> None:
    """Old boxes: at most 4 requests and 20 KB (gzip) of HTML, CSS and JS per page."""
    response = await paired.get(path, headers={"Accept-Encoding": "gzip"})
    html = await response.read()
    resources = re.findall(rb'(?:src|href)="(/tv/static/[^"]+)"', html)
    images = re.findall(rb'<img\b[^>]*\bwidth="(\d+)" height="(\d+)"', html)
    assert len(images) == html.count(b"<img"), "every image states its size"
    assert 1 + len(resources) + len(images) <= 4
    total = len(gzip.compress(html))
    for url in resources:
        asset = await paired.get(url.decode(), headers={"Accept-Encoding": "gzip"})
        total += (
            len(await asset.read())
            if asset.headers.get("Content-Encoding") == "gzip"
            else len(gzip.compress(await asset.read()))
        )
    assert total <= 20 * 1024, f"{path}: {total} bytes"
    for width, height in images:  # nothing that decodes to more than 1 MB
        assert int(width) * int(height) * 4 <= 1024 * 1024, (path, width, height)


async def test_cameras_of_my_village_with_signed_links(paired: Client) -> None:
    """The household sees its village's public cameras; the links carry a signature
    (box players drop cookies); another village's camera does not exist for it."""
    page = await (await paired.get("/tv/cameras")).text()
    assert "骑龙社区广场" in page
    assert re.search(
        r'src="/video/village/qilong/mosaic\.jpg\?exp=\d+&amp;sig=[\w-]+&amp;small=1"', page
    )
    view = await (await paired.get("/tv/cameras/qilong-square")).text()
    for output in ("index.m3u8", "stream.ts", "snapshot.jpg"):
        assert re.search(rf"/video/qilong-square/{re.escape(output)}\?exp=\d+&amp;sig=", view)
    assert 'data-page="video"' in view and 'href="/tv/cameras"' in view
    async with paired.app[DATABASE].transaction() as conn:
        await cameras.add(conn, id="anxi-gate", name="安西村口", village="anxicun",
                          url="testsrc://")  # fmt: skip
        await cameras.add(conn, id="qilong-private", name="内部", village="qilong",
                          url="testsrc://", public=False)  # fmt: skip
    for hidden in ("anxi-gate", "qilong-private", "nothing", "..%2F"):
        assert (await paired.get(f"/tv/cameras/{hidden}")).status == 404
    assert "内部" not in await (await paired.get("/tv/cameras")).text()
