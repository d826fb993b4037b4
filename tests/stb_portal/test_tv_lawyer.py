"""The family lawyer on the TV over HTTP: slots, topic, confirmation, my bookings,
cancel, the home reminder; fifty boxes at one slot on both backends; hostile input."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpClient
from sqlalchemy import func, select

import stb_portal.app
from stb_portal.tv import session as tv_session
from tests.stb_portal.conftest import Client, csrf_of
from xueliang import bookings, demo, households, lawyers, pairing
from xueliang.config import Settings
from xueliang.geography import LOCAL_TIME
from xueliang.signing import derive, load_secret_key, sign
from xueliang.storage import Database, upgrade
from xueliang.storage.tables import audit_log, lawyer_busy
from xueliang.storage.tables import bookings as bookings_table
from xueliang.storage.types import utcnow
from xueliang.web import DATABASE, SECRET_KEY, create_app

SLOT = re.compile(r'href="(/tv/lawyer/slot/lawyer-zhou/(\d+))"')


async def first_slot(client: Client) -> tuple[str, int]:
    page = await (await client.get("/tv/lawyer")).text()
    found = SLOT.search(page)
    assert found, page
    return found.group(1), int(found.group(2))


async def test_book_see_and_cancel(paired: Client) -> None:
    page = await (await paired.get("/tv/lawyer")).text()
    assert "周文静" in page and "新津明理律师事务所" in page and "婚姻家庭" in page
    assert 'data-default="1"' in page
    # Later days without scripting too: a link, not only the page-down key.
    later = re.search(r'id="later" class="f" data-group="pager" href="([^"]+)"', page)
    assert later and "p=2" in later.group(1)
    link, stamp = await first_slot(paired)
    topics = await (await paired.get(link)).text()
    assert f"{link}/family" in topics and f"{link}/inheritance" in topics
    confirm = await (await paired.get(f"{link}/land")).text()
    assert 'action="/tv/lawyer/book"' in confirm and f'value="{stamp}"' in confirm
    form = {"csrf": csrf_of(confirm), "lawyer": "lawyer-zhou", "at": str(stamp), "topic": "land"}
    response = await paired.post("/tv/lawyer/book", data=form, allow_redirects=False)
    assert response.status == 303
    booking_path = response.headers["Location"].split("?")[0]
    async with paired.app[DATABASE].read() as conn:
        logged = (
            await conn.execute(select(audit_log).where(audit_log.c.action == "booking.book"))
        ).all()
    assert [(r.actor, r.target) for r in logged] == [
        ("household qilong-001", booking_path.rsplit("/", 1)[1])
    ]
    shown = await (await paired.get(response.headers["Location"])).text()
    assert 'id="booked"' in shown and "土地房屋" in shown and "028-8000-1001" in shown
    # The slot is gone from the list; the booking is in "my bookings".
    assert f'/{stamp}"' not in await (await paired.get("/tv/lawyer")).text()
    mine = await (await paired.get("/tv/lawyer/bookings")).text()
    assert booking_path in mine
    # The same OK a second time books nothing more: it is already theirs.
    again = await paired.post("/tv/lawyer/book", data=form, allow_redirects=False)
    assert again.status == 303 and again.headers["Location"] == "/tv/lawyer/bookings"
    # Cancel with a preset reason; the slot is free again.
    cancel_page = await (await paired.get(f"{booking_path}/cancel")).text()
    assert 'value="solved"' in cancel_page and 'value="lawyer_absent"' not in cancel_page
    done = await paired.post(
        f"{booking_path}/cancel", data={"csrf": csrf_of(cancel_page), "reason": "solved"},
        allow_redirects=False,
    )  # fmt: skip
    assert done.status == 303
    after = await (await paired.get(booking_path)).text()
    assert "已取消" in after and "问题已经解决" in after and 'id="cancel"' not in after
    async with paired.app[DATABASE].read() as conn:
        logged = (
            await conn.execute(
                select(audit_log.c.detail).where(audit_log.c.action == "booking.cancel")
            )
        ).all()
    assert len(logged) == 1 and logged[0].detail.endswith("solved")
    assert f'/{stamp}"' in await (await paired.get("/tv/lawyer")).text()


async def test_reminder_on_the_home_page_on_the_day(paired: Client) -> None:
    """A booking of today (made by the duty centre on the phone) is on the home page."""
    db = paired.app[DATABASE]
    starts = (utcnow() + timedelta(minutes=20)).replace(second=0, microsecond=0)
    starts -= timedelta(minutes=starts.minute % 5)
    async with db.transaction() as conn:
        result = await conn.execute(
            bookings_table.insert().values(
                lawyer_id="lawyer-zhou", household_id="qilong-001", village_id="qilong",
                starts_at=starts, ends_at=starts + timedelta(minutes=30), topic="family",
                channel="phone", state="booked", created_at=utcnow(), created_by="qilong-duty",
            )
        )  # fmt: skip
    assert result.inserted_primary_key is not None
    home = await (await paired.get("/tv/")).text()
    local = starts.astimezone(LOCAL_TIME)
    if local.date() == utcnow().astimezone(LOCAL_TIME).date():
        assert 'id="today-booking"' in home and local.strftime("%H:%M") in home
        assert "周文静" in home
    else:  # run just before midnight: tomorrow's booking is no reminder today
        assert 'id="today-booking"' not in home


async def test_hostile_values(paired: Client, demo_dir: Path) -> None:
    link, stamp = await first_slot(paired)
    confirm = await (await paired.get(f"{link}/family")).text()
    csrf = csrf_of(confirm)
    base = {"csrf": csrf, "lawyer": "lawyer-zhou", "at": str(stamp), "topic": "family"}
    # No or a wrong CSRF token.
    for token in ("", "x" * 32, csrf[:-1]):
        response = await paired.post("/tv/lawyer/book", data={**base, "csrf": token})
        assert response.status == 403
    # Not a slot, another village's lawyer, junk: a clear page, nothing stored.
    for changes in (
        {"at": str(stamp + 60)}, {"at": "-1"}, {"at": "9" * 40}, {"at": "1e9"},
        {"at": "999999999999"}, {"at": "253402300000"}, {"at": "0"},
        {"lawyer": "lawyer-he"}, {"lawyer": "../x"}, {"lawyer": "x" * 10_000},
        {"topic": "<script>"}, {"topic": ""},
    ):  # fmt: skip
        response = await paired.post("/tv/lawyer/book", data={**base, **changes})
        assert response.status in (400, 409), changes
    for path in (
        f"{link}/astrology", f"/tv/lawyer/slot/lawyer-he/{stamp}", f"/tv/lawyer/slot/x/{stamp}",
        "/tv/lawyer/slot/lawyer-zhou/99999999999", "/tv/lawyer/slot/lawyer-zhou/abc",
        "/tv/lawyer/slot/lawyer-zhou/999999999999", "/tv/lawyer/slot/lawyer-zhou/253402300000",
        "/tv/lawyer/slot/lawyer-zhou/253402300000/family",
    ):  # fmt: skip
        assert (await paired.get(path)).status in (404, 409), path
    async with paired.app[DATABASE].read() as conn:
        assert await conn.scalar(select(func.count()).select_from(bookings_table)) == 0
    # Another household's booking does not exist here.
    db = paired.app[DATABASE]
    theirs = await db.run_write(
        partial(bookings.book, lawyer="lawyer-zhou", household="qilong-002",
                starts_at=datetime.fromtimestamp(stamp, UTC), topic="debt", channel="tv",
                by="qilong-002", now=utcnow())
    )  # fmt: skip
    mine = "/tv/lawyer/bookings"
    for path in (f"{mine}/{theirs.id}", f"{mine}/{theirs.id}/cancel", f"{mine}/99999",
                 f"{mine}/x", f"{mine}/1e3"):  # fmt: skip
        assert (await paired.get(path)).status == 404, path
    response = await paired.post(
        f"/tv/lawyer/bookings/{theirs.id}/cancel", data={"csrf": csrf, "reason": "solved"}
    )
    assert response.status == 404
    assert (await db.run_read(partial(bookings.get, id=theirs.id))).state == "booked"
    # Names are escaped wherever they appear.
    async with db.transaction() as conn:
        zhou = await conn.run_sync(lawyers.get, "lawyer-zhou")
        data = lawyers.checked(
            {"id": zhou.id, "name": "<b>周</b>", "practice": "<script>alert(1)</script>",
             "villages": list(zhou.villages), "plan": [p.model_dump() for p in zhou.plan]}
        )  # fmt: skip
        await conn.run_sync(lawyers.put, data, utcnow())
    page = await (await paired.get("/tv/lawyer")).text()
    assert "<script>alert" not in page and "&lt;script&gt;" in page and "&lt;b&gt;" in page


async def test_a_village_without_a_lawyer(paired: Client) -> None:
    async with paired.app[DATABASE].transaction() as conn:
        zhou = await conn.run_sync(lawyers.get, "lawyer-zhou")
        data = lawyers.checked(
            {"id": zhou.id, "name": zhou.name, "villages": ["anxicun"],
             "plan": [p.model_dump() for p in zhou.plan]}
        )  # fmt: skip
        await conn.run_sync(lawyers.put, data, utcnow())
    page = await (await paired.get("/tv/lawyer")).text()
    assert "暂时还没有可以预约的家庭律师" in page and 'href="/tv/"' in page


# --- fifty boxes, one slot, on each backend -----------------------------------------


@pytest.fixture
async def county_app(db_url: str, tmp_path: Path) -> web.Application:
    """The portal on the demo county in the given database, with 50 households more
    in 骑龙社区 (each will hold a box)."""
    data_dir = tmp_path / "var"
    key = load_secret_key(data_dir)
    db = Database(db_url)
    await upgrade(db)
    await demo.seed(db, key)
    async with db.transaction() as conn:
        for n in range(50):
            await households.add(conn, village="qilong", name=f"家{n}", id=f"box-{n}")
    await db.close()
    settings = Settings.model_validate({"data_dir": str(data_dir), "database": {"url": db_url}})
    app = create_app(settings, key)
    stb_portal.app.setup(app)
    return app


async def paired_box(app: web.Application, household: str) -> tuple[dict[str, str], str]:
    """The Cookie header of a box paired with `household`, and its CSRF token (what its
    pairing link would have given it)."""
    key = app[SECRET_KEY]
    generation = await app[DATABASE].run_read(partial(pairing.generation, household=household))
    cookie = sign(key, tv_session.PURPOSE, f"{household}|{generation}")
    csrf = derive(key, "csrf", household, str(generation), length=32)
    return {"Cookie": f"{tv_session.COOKIE}={cookie}"}, csrf


async def test_fifty_boxes_one_slot(
    aiohttp_client: AiohttpClient, county_app: web.Application
) -> None:
    client = await aiohttp_client(county_app)

    async def box(n: int) -> tuple[int, str]:
        headers, csrf = await paired_box(county_app, f"box-{n}")
        response = await client.post(
            "/tv/lawyer/book",
            data={"csrf": csrf, "lawyer": "lawyer-zhou", "at": str(stamp), "topic": "family"},
            headers=headers, allow_redirects=False,
        )  # fmt: skip
        return response.status, await response.text()

    headers, _ = await paired_box(county_app, "box-0")
    listing = await (await client.get("/tv/lawyer", headers=headers)).text()
    found = SLOT.search(listing)
    assert found, listing
    stamp = int(found.group(2))
    results = await asyncio.gather(*(box(n) for n in range(50)))
    statuses = sorted(status for status, _ in results)
    assert statuses == [303] + [409] * 49, statuses
    assert all("刚刚被别人约了" in text and 'href="/tv/lawyer"' in text
               for status, text in results if status == 409)  # fmt: skip
    async with county_app[DATABASE].read() as conn:
        assert await conn.scalar(select(func.count()).select_from(bookings_table)) == 1
        assert await conn.scalar(select(func.count()).select_from(lawyer_busy)) == 6


async def test_ids_no_row_can_have_are_not_found(
    aiohttp_client: AiohttpClient, county_app: web.Application
) -> None:
    """PostgreSQL's ids are 32-bit: a larger one in a link must be a 404, not a 500."""
    client = await aiohttp_client(county_app)
    headers, _ = await paired_box(county_app, "box-1")
    for path in ("/tv/polls/2147483648", "/tv/polls/99999999999/confirm",
                 "/tv/lawyer/bookings/2147483648", "/tv/lawyer/bookings/4294967296/cancel",
                 "/tv/alarm/2147483648", "/tv/alarm/99999999999.json"):  # fmt: skip
        response = await client.get(path, headers=headers)
        assert response.status == 404, (path, await response.text())
