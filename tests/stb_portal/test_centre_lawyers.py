"""The family lawyer in the staff console, over HTTP on the demo county: the week
calendar, booking on behalf of a household, one booking's actions, lawyer management,
absences and the CSV export; scope, CSRF and hostile values. Dates are computed from
today, so the tests pass on any weekday and at any hour."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.stb_portal.conftest import Client, csrf_of
from tests.stb_portal.staff import audited, sign_in
from xueliang import bookings, households, lawyers
from xueliang.geography import LOCAL_TIME, Scope
from xueliang.storage.tables import bookings as bookings_table
from xueliang.web import DATABASE

ZHOU = "/centre/lawyers/lawyer-zhou"


def next_monday() -> date:
    """The Monday of next week (1–7 days ahead): every slot of that week is still to
    come and inside the demo lawyers' 14-day window."""
    today = datetime.now(LOCAL_TIME).date()
    return today + timedelta(days=7 - today.weekday())


def at(day: date, clock: str) -> datetime:
    hours, minutes = map(int, clock.split(":"))
    return datetime(day.year, day.month, day.day, hours, minutes, tzinfo=LOCAL_TIME).astimezone(UTC)


def slots(html: str) -> list[str]:
    """The slots the calendar offers to book (the value of each Book button)."""
    return re.findall(r'name="starts_at" value="([^"]+)"', html)


async def calendar(client: Client, week: date, lawyer: str = ZHOU) -> str:
    response = await client.get(f"{lawyer}?week={week.isoformat()}")
    assert response.status == 200, await response.text()
    return await response.text()


async def book(
    client: Client, starts: datetime, household: str = "qilong-001", lawyer: str = ZHOU,
    **form: str,
) -> Any:  # fmt: skip
    csrf = csrf_of(await (await client.get("/centre/lawyers")).text())
    data = {"csrf": csrf, "starts_at": starts.isoformat(), "household": household,
            "topic": "land", "channel": "phone", "week": str(next_monday()), **form}  # fmt: skip
    return await client.post(f"{lawyer}/book", data=data, allow_redirects=False)


async def booked(client: Client, starts: datetime, household: str = "qilong-001") -> int:
    response = await book(client, starts, household)
    assert response.status == 303, await response.text()
    found = re.fullmatch(r"/centre/bookings/(\d+)", response.headers["Location"])
    assert found is not None
    return int(found.group(1))


async def test_lawyers_are_listed_by_area(tv: Client, demo_dir: Path) -> None:
    """Staff see the lawyers who serve their own villages, with the days they sit, and
    only town and county staff are offered to manage them."""
    await sign_in(tv, demo_dir, "qilong-duty")
    page = await (await tv.get("/centre/lawyers")).text()
    assert "周文静" in page and "何建平" not in page
    assert "周一至周五 09:00-12:00, 14:00-17:00" in page
    assert "另有 1 个在辖区外" in page  # anxicun, not named to a village's staff
    assert 'id="new-lawyer"' not in page and "/edit" not in page
    await sign_in(tv, demo_dir, "xinjin-centre")
    page = await (await tv.get("/centre/lawyers")).text()
    assert "周文静" in page and "何建平" in page and 'id="new-lawyer"' in page
    assert "周二 09:00-12:00, 14:00-17:00<br>周四 09:00-12:00, 14:00-17:00" in page


async def test_calendar_and_booking_on_behalf_of_a_household(tv: Client, demo_dir: Path) -> None:
    """A household calls the duty room: staff book the slot, the channel says how, the
    audit log says who; a second booking of the same slot is told it is taken."""
    monday = next_monday()
    await sign_in(tv, demo_dir, "qilong-duty")
    page = await calendar(tv, monday)
    offered = slots(page)
    assert len(offered) == 5 * 12  # Monday to Friday, 09–12 and 14–17 in 30 minutes
    assert offered[0] == at(monday, "09:00").isoformat()
    assert page.count("当天不坐班") == 2  # the weekend
    tuesday = at(monday + timedelta(days=1), "09:30")
    ident = await booked(tv, tuesday)
    page = await (await tv.get(f"/centre/bookings/{ident}")).text()
    for shown in ("王德明家", "028-8000-0101", "骑龙社区3组12号", "周文静", "土地承包",
                  "电话咨询", "已预约", "骑龙社区值守室"):  # fmt: skip
        assert shown in page, shown
    async with tv.app[DATABASE].read() as conn:
        row = (await conn.execute(select(bookings_table).where(bookings_table.c.id == ident))).one()
    assert (row.channel, row.created_by, row.household_id) == (
        "phone",
        "骑龙社区值守室",
        "qilong-001",
    )
    assert [(a, t) for a, t, _ in await audited(tv, "booking.book")] == [
        ("qilong-duty", str(ident))
    ]
    page = await calendar(tv, monday)
    assert tuesday.isoformat() not in slots(page) and len(slots(page)) == 59
    assert f'href="/centre/bookings/{ident}">王德明家</a>' in page
    again = await book(tv, tuesday, "qilong-002")
    assert again.status == 409
    assert "这个时段刚被别人预约了" in await again.text()
    assert 'value="qilong-002"' in await again.text()  # what was typed is kept
    assert len(await audited(tv, "booking.book.refused")) == 1
    # The household search fills the form in.
    found = await (await tv.get(f"{ZHOU}?week={monday}&q=李秀英")).text()
    assert "household=qilong-002" in found and "安西" not in found


async def test_booking_refusals_say_why(tv: Client, demo_dir: Path) -> None:
    """Staff on the phone with a household need to know at once why a booking did not
    go through, in their language, with the right status; nothing is booked."""
    monday = next_monday()
    await sign_in(tv, demo_dir, "xinjin-centre")
    for starts, household, channel, status, said in (
        (at(monday, "09:10"), "qilong-001", "phone", 400, "未被接受"),  # not on the grid
        (at(monday, "12:30"), "qilong-001", "phone", 400, "未被接受"),  # lunch break
        (at(monday, "09:00"), "fenghuo-001", "phone", 400, "不为这户所在的村服务"),
        (at(monday, "09:00"), "nobody", "phone", 404, "没有户籍编号为“nobody”的住户"),
        (at(monday, "09:00"), "qilong-001", "tv", 400, "未被接受"),  # staff do not book as the TV
        (at(monday - timedelta(days=14), "09:00"), "qilong-001", "phone", 409, "不能再预约"),
    ):  # fmt: skip
        response = await book(tv, starts, household, channel=channel)
        assert response.status == status, (starts, household)
        assert said in await response.text()
    for hostile in ("", "tomorrow", "2026-12-01T09:00", "9999-12-31T09:00:00+08:00"):
        response = await book(tv, at(monday, "09:00"), starts_at=hostile)
        assert response.status == 400, hostile
    assert await audited(tv, "booking.book") == []
    for hour in ("09:00", "10:00", "11:00"):
        await booked(tv, at(monday, hour), "qilong-002")
    response = await book(tv, at(monday, "14:00"), "qilong-002")
    assert response.status == 409 and "已有 3 个待进行的咨询预约" in await response.text()


async def test_another_areas_lawyer_booking_and_household_are_not_found(
    tv: Client, demo_dir: Path
) -> None:
    """Ids tell nothing: what lies outside the staff's area is not found, never
    forbidden, whatever the method."""
    monday = next_monday()
    await sign_in(tv, demo_dir, "anxi-centre")
    theirs = await booked(tv, at(monday, "10:00"), "anxicun-001")
    await sign_in(tv, demo_dir, "qilong-duty")
    # The slot anxicun took is busy for qilong too, without saying who holds it.
    page = await calendar(tv, monday)
    assert "已被辖区外住户预约" in page and "张国强家" not in page
    assert at(monday, "10:00").isoformat() not in slots(page)
    assert (await tv.get(f"/centre/bookings/{theirs}")).status == 404
    csrf = csrf_of(page)
    for action, form in (("close", {"outcome": "done"}), ("cancel", {"reason": "other"}),
                         ("note", {"note": "x"})):  # fmt: skip
        response = await tv.post(f"/centre/bookings/{theirs}/{action}", data={"csrf": csrf, **form})
        assert response.status == 404, action
    assert len(await audited(tv, "booking.cancel.refused")) == 1
    response = await book(tv, at(monday, "11:00"), "anxicun-002")  # a household of anxicun
    assert response.status == 404 and "没有户籍编号为“anxicun-002”" in await response.text()
    assert (await tv.get("/centre/lawyers/lawyer-he")).status == 404
    he = "/centre/lawyers/lawyer-he"
    assert (await book(tv, at(monday + timedelta(days=1), "09:00"), lawyer=he)).status == 404
    assert (await tv.get("/centre/bookings?village=fenghuo")).status == 404
    export = "/centre/bookings.csv?from=2026-01&to=2026-02&lawyer=lawyer-he"
    assert (await tv.get(export)).status == 404
    for hostile in ("abc", "1%3Bdrop", "9" * 30, "-1"):
        assert (await tv.get(f"/centre/bookings/{hostile}")).status == 404
    assert (await tv.get("/centre/lawyers/..%2F..%2Fetc")).status == 404


async def test_forms_without_csrf_are_refused(tv: Client, demo_dir: Path) -> None:
    """A page of another site cannot make a signed-in staff member book, cancel, edit a
    lawyer or add an absence."""
    monday = next_monday()
    await sign_in(tv, demo_dir, "puxing-centre")
    ident = await booked(tv, at(monday, "09:00"))
    for path, form in (
        (f"{ZHOU}/book", {"starts_at": at(monday, "09:30").isoformat(), "household": "qilong-002",
                          "topic": "land", "channel": "phone"}),
        (f"/centre/bookings/{ident}/cancel", {"reason": "other"}),
        (f"/centre/bookings/{ident}/note", {"note": "x"}),
        (f"{ZHOU}/edit", {"name": "改名"}),
        (f"{ZHOU}/absences", {"day": monday.isoformat()}),
        ("/centre/lawyers/new", {"id": "x", "name": "x"}),
    ):  # fmt: skip
        assert (await tv.post(path, data=form)).status == 403, path
        forged = await tv.post(path, data={**form, "csrf": "forged-token-forged-token-forged"})
        assert forged.status == 403, path
    async with tv.app[DATABASE].read() as conn:
        count = len((await conn.execute(select(bookings_table.c.id))).all())
    assert count == 1
    assert "周文静" in await (await tv.get("/centre/lawyers")).text()


async def test_closing_cancelling_and_notes(tv: Client, demo_dir: Path) -> None:
    """A consultation cannot be recorded as held before it begins; a staff cancel
    keeps its reason and explanation and frees the slot for another household."""
    monday = next_monday()
    await sign_in(tv, demo_dir, "qilong-duty")
    thursday = at(monday + timedelta(days=3), "14:30")
    ident = await booked(tv, thursday)
    page = await (await tv.get(f"/centre/bookings/{ident}")).text()
    assert 'name="outcome"' not in page  # nothing to close before it begins
    early = await tv.post(
        f"/centre/bookings/{ident}/close", data={"csrf": csrf_of(page), "outcome": "done"}
    )
    assert early.status == 409 and "咨询尚未开始" in await early.text()
    assert [a for a, _, _ in await audited(tv, "booking.done.refused")] == ["qilong-duty"]
    note = await tv.post(
        f"/centre/bookings/{ident}/note",
        data={"csrf": csrf_of(page), "note": "<b>请带上承包合同</b>"},
        allow_redirects=False,
    )
    assert note.status == 303
    too_long = await tv.post(
        f"/centre/bookings/{ident}/note", data={"csrf": csrf_of(page), "note": "长" * 2001}
    )
    assert too_long.status == 400 and "未被接受" in await too_long.text()
    cancel = await tv.post(
        f"/centre/bookings/{ident}/cancel",
        data={"csrf": csrf_of(page), "reason": "lawyer_absent", "explanation": "律师出庭"},
        allow_redirects=False,
    )
    assert cancel.status == 303
    page = await (await tv.get(f"/centre/bookings/{ident}")).text()
    assert "已取消" in page and "律师不在" in page and "律师出庭" in page
    assert "&lt;b&gt;请带上承包合同&lt;/b&gt;" in page and "<b>请带上" not in page
    assert [(a, d) for a, _, d in await audited(tv, "booking.cancel")] == [
        ("qilong-duty", "lawyer_absent")
    ]
    assert len(await audited(tv, "booking.note")) == 1  # the explanation is the cancel's
    # The slot is free again, and can be booked by someone else.
    assert thursday.isoformat() in slots(await calendar(tv, monday))
    await booked(tv, thursday, "qilong-002")
    again = await tv.post(
        f"/centre/bookings/{ident}/cancel", data={"csrf": csrf_of(page), "reason": "other"}
    )
    assert again.status == 409
    bad = await tv.post(
        f"/centre/bookings/{ident}/cancel", data={"csrf": csrf_of(page), "reason": "bored"}
    )
    assert bad.status == 400


async def test_a_consultation_that_has_begun_is_closed(tv: Client, demo_dir: Path) -> None:
    """After the hour the duty room records whether the household came: the village's
    records of the service rest on it."""
    last_monday = next_monday() - timedelta(days=14)
    starts = at(last_monday, "09:00")
    made = await tv.app[DATABASE].run_write(
        partial(bookings.book, lawyer="lawyer-zhou", household="qilong-002", starts_at=starts,
                topic="family", channel="visit", by="骑龙社区值守室",
                now=starts - timedelta(days=1), scope=Scope("village", "qilong"))
    )  # fmt: skip
    await sign_in(tv, demo_dir, "qilong-duty")
    page = await (await tv.get(f"/centre/bookings/{made.id}")).text()
    assert 'value="no_show"' in page and 'name="reason"' not in page  # over: no cancelling
    response = await tv.post(
        f"/centre/bookings/{made.id}/close",
        data={"csrf": csrf_of(page), "outcome": "no_show"},
        allow_redirects=False,
    )
    assert response.status == 303
    page = await (await tv.get(f"/centre/bookings/{made.id}")).text()
    assert "住户未到" in page and "这个预约已结束" in page
    assert [t for _, t, _ in await audited(tv, "booking.no_show")] == [str(made.id)]
    listed = await (await tv.get(f"/centre/bookings?week={last_monday}")).text()
    assert "李秀英家" in listed and "住户未到" in listed


async def test_village_staff_only_view_lawyers(tv: Client, demo_dir: Path) -> None:
    """A village's duty room books, but who the lawyer is and when they sit is decided
    by the town or county; a refused attempt is in the audit log."""
    await sign_in(tv, demo_dir, "qilong-duty")
    for path in (f"{ZHOU}/edit", "/centre/lawyers/new"):
        response = await tv.get(path)
        assert response.status == 403 and "只有镇级和县级工作人员" in await response.text()
    csrf = csrf_of(await (await tv.get("/centre/lawyers")).text())
    for path, form in (
        (f"{ZHOU}/edit", {"name": "改名", "village_qilong": "on", "slot_minutes": "30"}),
        ("/centre/lawyers/new", {"id": "lawyer-x", "name": "某律师", "village_qilong": "on"}),
        (f"{ZHOU}/absences", {"day": next_monday().isoformat()}),
    ):
        assert (await tv.post(path, data={"csrf": csrf, **form})).status == 403, path
    async with tv.app[DATABASE].read() as conn:
        zhou = await conn.run_sync(lawyers.find, "lawyer-zhou")
        assert await conn.run_sync(lawyers.find, "lawyer-x") is None
    assert zhou is not None and zhou.name == "周文静"
    assert len(await audited(tv, "lawyer.put.refused")) == 2
    assert len(await audited(tv, "lawyer.absence.add.refused")) == 1
    # Another area's lawyer stays not found, even for the form.
    assert (await tv.get("/centre/lawyers/lawyer-he/edit")).status == 404


PLAN_DAYS = [f"plan_{d}" for d in range(5)]


def edit_form(csrf: str, **changes: str) -> dict[str, str]:
    form = {"csrf": csrf, "name": "周文静", "firm": "新津明理律师事务所", "phone": "028-8000-1001",
            "practice": "婚姻家庭", "village_qilong": "on", "slot_minutes": "30",
            "lead_minutes": "120", "window_days": "14", "cancel_cutoff_minutes": "120",
            "active": "on", **dict.fromkeys(PLAN_DAYS, "09:00-12:00, 14:00-17:00")}  # fmt: skip
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


@pytest.mark.parametrize(
    ("changes", "said"),
    [
        ({"name": "<script>alert(1)</script>", "plan_2": "9 to 12"}, "时段请按此格式填写"),
        ({"name": "名" * 101}, "at most 100 characters"),
        ({"practice": "x" * 201}, "at most 200 characters"),
        ({"phone": "call me"}, "must be digits"),
        ({"village_elsewhere": "on"}, "只能选择您辖区内的村"),
        ({"slot_minutes": "abc"}, "请输入整数"),
        ({"slot_minutes": "7"}, "multiple of 5"),
        ({"window_days": "9" * 40}, "请输入整数"),
        ({"plan_0": "09:00-12:00, 11:00-13:00"}, "overlap"),
        ({"plan_1": "09:03-10:00"}, "5-minute mark"),
        ({"plan_3": "12:00-09:00"}, "must end after"),
        ({"plan_4": "09:00-12:00", "plan_4_village": "fenghuo"}, "not one of the villages"),
        ({"plan_5": "x" * 5000}, "时段请按此格式填写"),
    ],
)
async def test_editing_with_hostile_values_stores_nothing(
    tv: Client, demo_dir: Path, changes: dict[str, str], said: str
) -> None:
    """Whatever is typed or forged into the form, the lawyer stays as it was, the
    person is told what to correct next to the field, and what they typed is kept."""
    await sign_in(tv, demo_dir, "xinjin-centre")
    page = await (await tv.get(f"{ZHOU}/edit")).text()
    response = await tv.post(f"{ZHOU}/edit", data=edit_form(csrf_of(page), **changes))
    text = await response.text()
    assert response.status == 400, text
    assert said in text and "尚未保存" in text
    assert "<script>alert" not in text
    for value in changes.values():  # what was typed is shown again, escaped
        if value not in ("on", "fenghuo"):
            assert f'value="{value.replace("<", "&lt;").replace(">", "&gt;")}"' in text
    async with tv.app[DATABASE].read() as conn:
        zhou = await conn.run_sync(lawyers.find, "lawyer-zhou")
    assert zhou is not None and zhou.name == "周文静" and zhou.slot_minutes == 30
    assert zhou.villages == ("anxicun", "qilong")
    assert await audited(tv, "lawyer.put") == []
    assert len(await audited(tv, "lawyer.put.refused")) == 1


async def test_a_lawyer_shared_with_another_town_is_the_countys(tv: Client, demo_dir: Path) -> None:
    """周文静 serves 骑龙 (普兴镇) and 安西村 (安西镇): neither town may change her plan or
    absences for the other; the county may. Names are shown as text, never as markup."""
    await sign_in(tv, demo_dir, "puxing-centre")
    refused_page = await tv.get(f"{ZHOU}/edit")
    assert refused_page.status == 403 and "由县中心修改" in await refused_page.text()
    csrf = csrf_of(await (await tv.get("/centre/lawyers")).text())
    response = await tv.post(f"{ZHOU}/edit", data=edit_form(csrf, name="改名"))
    assert response.status == 403
    day = (next_monday() + timedelta(days=1)).isoformat()
    response = await tv.post(f"{ZHOU}/absences", data={"csrf": csrf, "day": day})
    assert response.status == 403
    assert len(await audited(tv, "lawyer.put.refused")) == 1
    assert len(await audited(tv, "lawyer.absence.add.refused")) == 1
    async with tv.app[DATABASE].read() as conn:
        zhou = await conn.run_sync(lawyers.find, "lawyer-zhou")
        assert zhou is not None and zhou.name == "周文静"
        assert await conn.run_sync(lawyers.absences, "lawyer-zhou", next_monday(),
                                   next_monday() + timedelta(days=30)) == []  # fmt: skip

    await sign_in(tv, demo_dir, "xinjin-centre")
    page = await (await tv.get(f"{ZHOU}/edit")).text()
    assert 'name="plan_0" value="09:00-12:00, 14:00-17:00"' in page
    assert 'name="village_qilong" checked' in page and 'name="village_anxicun" checked' in page
    form = edit_form(csrf_of(page), name="周<b>文静</b>", slot_minutes="60",
                     **{f"plan_{d}": "" for d in range(1, 5)})  # fmt: skip
    form["village_anxicun"] = "on"
    form["plan_0"] = "9:00-11:00，14:00～16:00"  # written the way people type it
    response = await tv.post(f"{ZHOU}/edit", data=form, allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == ZHOU
    async with tv.app[DATABASE].read() as conn:
        zhou = await conn.run_sync(lawyers.find, "lawyer-zhou")
    assert zhou is not None and zhou.villages == ("anxicun", "qilong")
    assert [(p.weekday, p.start, p.end) for p in zhou.plan] == [
        (0, "09:00", "11:00"), (0, "14:00", "16:00")
    ]  # fmt: skip
    assert [(a, t) for a, t, _ in await audited(tv, "lawyer.put")] == [
        ("xinjin-centre", "lawyer-zhou")
    ]
    listed = await (await tv.get("/centre/lawyers")).text()
    assert "周&lt;b&gt;文静&lt;/b&gt;" in listed and "<b>文静" not in listed
    assert len(slots(await calendar(tv, next_monday()))) == 4  # Monday 9, 10, 14, 15


async def test_new_lawyer(tv: Client, demo_dir: Path) -> None:
    """A new lawyer is bookable at once; a taken number never overwrites a lawyer,
    least of all one of another area."""
    await sign_in(tv, demo_dir, "yongshang-centre")
    page = await (await tv.get("/centre/lawyers/new")).text()
    assert 'name="slot_minutes" value="30"' in page and 'name="village_fenghuo"' in page
    form = {"csrf": csrf_of(page), "id": "lawyer-li", "name": "李律师", "village_fenghuo": "on",
            "slot_minutes": "60", "lead_minutes": "0", "window_days": "30",
            "cancel_cutoff_minutes": "60", "active": "on", "plan_2": "14:00-16:00",
            "plan_2_village": "fenghuo"}  # fmt: skip
    response = await tv.post("/centre/lawyers/new", data=form, allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/centre/lawyers/lawyer-li"
    page = await calendar(tv, next_monday(), "/centre/lawyers/lawyer-li")
    assert [s[11:16] for s in slots(page)] == ["06:00", "07:00"]  # 14:00 and 15:00 in UTC
    for taken in ("lawyer-zhou", "new"):  # another area's lawyer is not overwritten
        response = await tv.post("/centre/lawyers/new", data={**form, "id": taken})
        assert response.status in (400, 409) and "已被另一位律师使用" in await response.text()
    response = await tv.post("/centre/lawyers/new", data={**form, "id": "../x"})
    assert response.status == 400
    outside = {**form, "id": "lawyer-x", "village_qilong": "on"}  # another town's village
    response = await tv.post("/centre/lawyers/new", data=outside)
    assert response.status == 400 and "只能选择您辖区内的村" in await response.text()
    async with tv.app[DATABASE].read() as conn:
        zhou = await conn.run_sync(lawyers.find, "lawyer-zhou")
    assert zhou is not None and zhou.name == "周文静"
    await sign_in(tv, demo_dir, "fenghuo-duty")
    assert "李律师" in await (await tv.get("/centre/lawyers")).text()


async def test_absences_remove_slots_and_mark_bookings(tv: Client, demo_dir: Path) -> None:
    """A day in court must not be bookable, and a household already booked then must
    be called: the calendar shows both; removing the absence frees the slots."""
    monday = next_monday()
    tuesday, wednesday, thursday = (monday + timedelta(days=n) for n in (1, 2, 3))
    await sign_in(tv, demo_dir, "qilong-duty")
    kept = await booked(tv, at(thursday, "09:00"))
    await sign_in(tv, demo_dir, "xinjin-centre")
    page = await (await tv.get(f"{ZHOU}/edit")).text()
    csrf = csrf_of(page)
    for form in ({"day": tuesday.isoformat(), "reason": "开庭"},
                 {"day": wednesday.isoformat(), "from": "09:00", "to": "10:00"},
                 {"day": thursday.isoformat()}):  # fmt: skip
        response = await tv.post(
            f"{ZHOU}/absences", data={"csrf": csrf, **form}, allow_redirects=False
        )
        assert response.status == 303
    page = await calendar(tv, monday)
    offered = [datetime.fromisoformat(s).astimezone(LOCAL_TIME) for s in slots(page)]
    assert not [s for s in offered if s.date() in (tuesday, thursday)]
    assert [s.strftime("%H:%M") for s in offered if s.date() == wednesday][:2] == ["10:00", "10:30"]
    assert page.count("律师不在") == 12 + 2 + 11  # Tuesday, Wednesday 9–10, Thursday but 09:00
    assert "律师届时不在，请通知住户" in page and f"/centre/bookings/{kept}" in page
    refused = await book(tv, at(tuesday, "09:00"))
    assert refused.status == 400
    day = tuesday.isoformat()
    for bad, said in (({"day": "tomorrow"}, "日期请按此格式填写"),
                      ({"day": day, "from": "09:00"}, "请同时填写开始和结束时间"),
                      ({"day": day, "from": "10:00", "to": "09:00"}, "请同时填写"),
                      ({"day": day, "reason": "x" * 101}, "at most 100")):  # fmt: skip
        response = await tv.post(f"{ZHOU}/absences", data={"csrf": csrf, **bad})
        assert response.status == 400 and said in await response.text(), bad
    page = await (await tv.get(f"{ZHOU}/edit")).text()
    assert "开庭" in page and "09:00–10:00" in page and "全天" in page
    removal = re.findall(r'action="(/centre/lawyers/lawyer-zhou/absences/\d+/remove)"', page)
    assert len(removal) == 3
    response = await tv.post(removal[0], data={"csrf": csrf}, allow_redirects=False)
    assert response.status == 303
    assert (await tv.post(removal[0], data={"csrf": csrf})).status == 404  # already gone
    page = await calendar(tv, monday)
    days = [datetime.fromisoformat(s).astimezone(LOCAL_TIME).date() for s in slots(page)]
    assert days.count(tuesday) == 12
    assert [a for a, _, _ in await audited(tv, "lawyer.absence.add")] == ["xinjin-centre"] * 3
    assert len(await audited(tv, "lawyer.absence.remove")) == 1
    assert len(await audited(tv, "lawyer.absence.add.refused")) == 4


async def test_village_calendar_and_csv_export(tv: Client, demo_dir: Path) -> None:
    """Villages keep the consultations in spreadsheets: the export opens with Chinese
    names intact (BOM), a name cannot run as a formula, and every export is audited."""
    monday = next_monday()
    async with tv.app[DATABASE].transaction() as conn:
        await households.add(conn, village="qilong", name='=HYPERLINK("http://x")', id="q-formula")
    await sign_in(tv, demo_dir, "qilong-duty")
    starts = at(monday + timedelta(days=4), "16:30")
    ident = await booked(tv, starts, "q-formula")
    page = await (await tv.get(f"/centre/bookings?week={monday}")).text()
    assert "=HYPERLINK" in page and f'href="/centre/bookings/{ident}"' in page
    month = starts.astimezone(LOCAL_TIME).strftime("%Y-%m")
    response = await tv.get(f"/centre/bookings.csv?from={month}&to={month}&lawyer=lawyer-zhou")
    assert response.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in response.headers["Content-Disposition"]
    body = (await response.read()).decode("utf-8")
    assert body.startswith("\ufeffbooking,starts_at,ends_at,lawyer,")
    lines = body.strip().splitlines()
    assert len(lines) == 2 and lines[1].startswith(f"{ident},")
    assert '"\'=HYPERLINK(""http://x"")"' in lines[1]  # text, never a formula
    assert [(a, d) for a, _, d in await audited(tv, "export.bookings_csv")] == [
        ("qilong-duty", "lawyer-zhou")
    ]
    for query in ("from=2026-13&to=2026-12", "from=../../etc", "from=2026-05&to=2020-01"):
        assert (await tv.get(f"/centre/bookings.csv?{query}")).status == 400, query
    for path in ("/centre/bookings?week=2026-13-01", f"{ZHOU}?week=..%2Fetc",
                 f"{ZHOU}?week=1999-01-04"):  # fmt: skip
        response = await tv.get(path)
        assert response.status == 400 and "周次须为日期" in await response.text(), path


async def test_console_speaks_english_when_asked(tv: Client, demo_dir: Path) -> None:
    """Every word of the new pages comes from the catalogues."""
    await sign_in(tv, demo_dir, "puxing-centre")
    await tv.get("/centre/lang/en?next=/centre/lawyers")
    page = await calendar(tv, next_monday())
    assert "Book for a household" in page and "Monday" in page and "周一" not in page
    listed = await (await tv.get("/centre/lawyers")).text()
    assert "and 1 outside your area" in listed
    edit = await (await tv.get(f"{ZHOU}/edit")).text()
    assert "the county centre changes their plan" in edit
