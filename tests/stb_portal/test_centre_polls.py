"""The console's opinion polls over HTTP on the demo county: writing and editing a
poll, paper votes against the one roll, results hidden until they may be seen, the CSV
export, scope, hostile forms; and the bar chart the results are drawn with."""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp import FormData
from sqlalchemy import func, select

from stb_portal.centre.charts import PALETTE, share_bars
from tests.stb_portal.conftest import Client
from tests.stb_portal.staff import audited, sign_in
from xueliang import households, polls
from xueliang.geography import LOCAL_TIME, Scope
from xueliang.storage.tables import polls as polls_table
from xueliang.web import DATABASE

VILLAGE_POLL = "村口路灯装在哪里？"  # demo: qilong, one answer
TOWN_POLL = "普兴镇冬季文化活动征询"  # demo: puxing, up to two answers
SVG = "{http://www.w3.org/2000/svg}"


def local_input(moment: datetime) -> str:
    return moment.astimezone(LOCAL_TIME).strftime("%Y-%m-%dT%H:%M")


def poll_form(csrf: str, **changes: str) -> dict[str, str]:
    """A valid poll of qilong, open from an hour ago for a week (whatever the date)."""
    now = datetime.now(LOCAL_TIME)
    return {
        "csrf": csrf, "title": "垃圾分类点设在哪里？", "description": "请选择\r\n最方便的位置。",
        "place": "village:qilong", "opens_at": local_input(now - timedelta(hours=1)),
        "closes_at": local_input(now + timedelta(days=7)), "results": "after_close",
        "q0_text": "分类点位置", "q0_max": "1", "q0_options": "村委会门口\r\n\r\n 文化广场 \r\n",
        "q1_text": "希望的收运时间", "q1_max": "2", "q1_options": "早上\n中午\n晚上",
        **changes,
    }  # fmt: skip


async def poll_named(client: Client, title: str) -> polls.Poll:
    db = client.app[DATABASE]
    async with db.read() as conn:
        ident = await conn.execute(select(polls_table.c.id).where(polls_table.c.title == title))
        poll_id = ident.scalar_one()
    return await db.run_read(partial(polls.get, poll_id=poll_id))


async def count_polls(client: Client) -> int:
    async with client.app[DATABASE].read() as conn:
        return int((await conn.execute(select(func.count()).select_from(polls_table))).scalar_one())


async def paper(
    client: Client, poll: polls.Poll, csrf: str, household: str, picks: list[tuple[int, int]]
) -> Any:
    """Post a paper vote choosing (question, option) positions."""
    form = FormData()
    form.add_field("csrf", csrf)
    form.add_field("household", household)
    for q, o in picks:
        question = poll.questions[q]
        form.add_field(f"q{question.id}", str(question.options[o].id))
    return await client.post(f"/centre/polls/{poll.id}/paper", data=form, allow_redirects=False)


def svgs(page: str) -> list[ET.Element]:
    found = re.findall(r"<svg .*?</svg>", page, flags=re.DOTALL)
    return [ET.fromstring(chart) for chart in found]  # noqa: S314 — our own output


async def test_write_a_poll_then_edit_it_before_anyone_votes(tv: Client, demo_dir: Path) -> None:
    """A town centre writes a poll for one of its villages; until a household answers,
    everything about it may still change."""
    csrf = await sign_in(tv, demo_dir, "puxing-centre")
    form = await (await tv.get("/centre/polls/new")).text()
    assert 'value="village:qilong"' in form and 'value="town:puxing"' in form
    assert "anxicun" not in form and "town:anxi" not in form
    response = await tv.post("/centre/polls/new", data=poll_form(csrf), allow_redirects=False)
    assert response.status == 303, await response.text()
    poll = await poll_named(tv, "垃圾分类点设在哪里？")
    assert response.headers["Location"] == f"/centre/polls/{poll.id}"
    assert poll.description == "请选择 最方便的位置。"
    assert [o.text for o in poll.questions[0].options] == ["村委会门口", "文化广场"]
    assert poll.questions[1].max_choices == 2 and poll.created_by == "普兴镇综治中心"
    listed = await (await tv.get("/centre/polls")).text()
    row = re.search(rf'<tr id="poll-{poll.id}".*?</tr>', listed, flags=re.DOTALL)
    assert row is not None and "垃圾分类点设在哪里？" in row.group(0) and "骑龙社区" in row.group(0)
    assert "进行中" in row.group(0) and '<td class="turnout">0</td>' in row.group(0)
    assert VILLAGE_POLL in listed and TOWN_POLL in listed
    page = await (await tv.get(f"/centre/polls/{poll.id}")).text()
    assert 'id="edit-poll"' in page and 'id="results-hidden"' in page and "<svg" not in page

    editing = await (await tv.get(f"/centre/polls/{poll.id}/edit")).text()
    assert (
        'value="垃圾分类点设在哪里？"' in editing and "村委会门口\n文化广场</textarea>" in editing
    )
    changed = poll_form(csrf, title="垃圾分类点改设在哪里？", place="town:puxing", q1_text="")
    changed["q1_options"] = ""  # the second question is taken out
    response = await tv.post(f"/centre/polls/{poll.id}/edit", data=changed, allow_redirects=False)
    assert response.status == 303, await response.text()
    edited = await tv.app[DATABASE].run_read(partial(polls.get, poll_id=poll.id))
    assert edited.title == "垃圾分类点改设在哪里？" and edited.village is None
    assert edited.town == "puxing" and len(edited.questions) == 1
    assert await audited(tv, "poll.create") == [
        ("puxing-centre", str(poll.id), "垃圾分类点设在哪里？")
    ]
    assert await audited(tv, "poll.edit") == [
        ("puxing-centre", str(poll.id), "垃圾分类点改设在哪里？")
    ]


async def test_paper_votes_count_once_and_only_in_scope(tv: Client, demo_dir: Path) -> None:
    """Paper and TV share one roll: a household is counted once; staff enter paper
    votes only for households of their area; the audit log names the household but
    never what it chose; once somebody has voted the poll cannot be edited."""
    csrf = await sign_in(tv, demo_dir, "qilong-duty")
    poll = await poll_named(tv, VILLAGE_POLL)
    page = await (await tv.get(f"/centre/polls/{poll.id}")).text()
    assert 'type="radio"' in page and 'name="household"' in page
    response = await paper(tv, poll, csrf, "qilong-001", [(0, 2)])
    assert response.headers["Location"] == f"/centre/polls/{poll.id}?recorded=qilong-001"
    page = await (await tv.get(response.headers["Location"])).text()
    assert "住户 qilong-001 的纸质意见已计入" in page
    assert '<td id="turnout-paper">1</td>' in page and '<td id="turnout">1</td>' in page
    assert 'id="edit-poll"' not in page
    listed = await (await tv.get("/centre/polls")).text()
    row = re.search(rf'<tr id="poll-{poll.id}".*?</tr>', listed, flags=re.DOTALL)
    assert row is not None and '<td class="turnout">1</td>' in row.group(0)

    again = await paper(tv, poll, csrf, "qilong-001", [(0, 0)])
    assert again.status == 409 and "已参与过本次征询" in await again.text()
    for outside in ("anxicun-001", "nobody-999", "<b>x</b>"):
        response = await paper(tv, poll, csrf, outside, [(0, 0)])
        text = await response.text()
        assert response.status == 404 and "没有编号为" in text, outside
        assert "<b>x</b>" not in text
    unanswered = await paper(tv, poll, csrf, "qilong-002", [])
    assert unanswered.status == 400 and "第 1 题没有作答" in await unanswered.text()
    two = await paper(tv, poll, csrf, "qilong-002", [(0, 0), (0, 1)])
    assert two.status == 400 and "最多只能选 1 项" in await two.text()
    counted = await tv.app[DATABASE].run_read(partial(polls.tally, poll_id=poll.id))
    assert counted.voters == 1 and counted.by_channel == {"paper": 1}

    assert await audited(tv, "poll.paper_vote") == [
        ("qilong-duty", "qilong-001", f"poll {poll.id}")
    ]
    refused = await audited(tv, "poll.paper_vote.refused")
    assert [target for _, target, _ in refused] == [
        "qilong-001", "anxicun-001", "nobody-999", "<b>x</b>", "qilong-002", "qilong-002",
    ]  # fmt: skip
    option_texts = [o.text for o in poll.questions[0].options]
    assert not [d for _, _, d in refused if d and any(t in d for t in option_texts)]

    locked = await (await tv.get(f"/centre/polls/{poll.id}/edit")).text()
    assert "已有住户参与本次征询" in locked and 'name="title"' not in locked
    response = await tv.post(
        f"/centre/polls/{poll.id}/edit",
        data=poll_form(csrf, title="改过的题目"),
        allow_redirects=False,
    )
    assert response.status == 409 and "不能再修改，只能结束" in await response.text()
    unchanged = await tv.app[DATABASE].run_read(partial(polls.get, poll_id=poll.id))
    assert unchanged.title == VILLAGE_POLL
    assert [a for a, _, _ in await audited(tv, "poll.edit.refused")] == ["qilong-duty"]


async def test_results_are_hidden_until_the_close(tv: Client, demo_dir: Path) -> None:
    """Nobody steers a poll by watching it: before the close staff see turnout only,
    no chart and no CSV; after it, one chart per question and the export."""
    csrf = await sign_in(tv, demo_dir, "puxing-centre")
    poll = await poll_named(tv, TOWN_POLL)
    assert (await paper(tv, poll, csrf, "qilong-002", [(0, 0), (0, 3)])).status == 303
    page = await (await tv.get(f"/centre/polls/{poll.id}")).text()
    assert "<svg" not in page and "征询结束时公布" in page and 'type="checkbox"' in page
    hidden = await tv.get(f"/centre/polls/{poll.id}.csv")
    assert hidden.status == 409 and "之前不公布" in await hidden.text()

    unconfirmed = await tv.post(f"/centre/polls/{poll.id}/close", data={"csrf": csrf})
    assert unconfirmed.status == 400 and "请勾选确认" in await unconfirmed.text()
    response = await tv.post(
        f"/centre/polls/{poll.id}/close", data={"csrf": csrf, "confirm": "yes"},
        allow_redirects=False,
    )  # fmt: skip
    assert response.headers["Location"] == f"/centre/polls/{poll.id}"
    page = await (await tv.get(f"/centre/polls/{poll.id}")).text()
    assert "已结束" in page and "提前结束" in page and 'name="household"' not in page
    [chart] = svgs(page)
    assert chart.get("role") == "img" and chart.findtext(f"{SVG}title") == "您家想参加的活动："
    values = [t.text for t in chart.iter(f"{SVG}text") if t.get("class") == "value"]
    assert values == ["1 (100 %)", "0 (0 %)", "0 (0 %)", "1 (100 %)", "0 (0 %)"]
    late = await paper(tv, poll, csrf, "qilong-001", [(0, 1)])
    assert late.status == 409 and "不在进行中" in await late.text()

    exported = await tv.get(f"/centre/polls/{poll.id}.csv")
    assert exported.headers["Content-Type"].startswith("text/csv")
    body = (await exported.read()).decode("utf-8")
    assert body.startswith("\ufeffpoll,question,option,votes")
    assert f"{poll.id},您家想参加的活动：,坝坝电影,1" in body
    assert f"{poll.id},您家想参加的活动：,川剧演出,0" in body
    assert f"{poll.id},paper,1," in body and "qilong-002" not in body
    assert await audited(tv, "export.poll_csv") == [("puxing-centre", str(poll.id), None)]
    assert await audited(tv, "poll.close") == [("puxing-centre", str(poll.id), None)]


async def test_live_results_show_while_the_poll_is_open(tv: Client, demo_dir: Path) -> None:
    """A poll written with live results shows them from its opening, to staff as to
    households; an upcoming one says when."""
    csrf = await sign_in(tv, demo_dir, "qilong-duty")
    later = datetime.now(LOCAL_TIME) + timedelta(days=2)
    for title, opens in (("现在就看结果", None), ("下周的征询", later)):
        changes = {"title": title, "results": "live"}
        if opens is not None:
            changes["opens_at"] = local_input(opens)
        response = await tv.post("/centre/polls/new", data=poll_form(csrf, **changes))
        assert response.status == 200, await response.text()
    now_poll = await poll_named(tv, "现在就看结果")
    live = await (await tv.get(f"/centre/polls/{now_poll.id}")).text()
    assert "<svg" not in live and "至少 5 户参与后才显示实时结果" in live
    db = tv.app[DATABASE]
    async with db.transaction() as conn:
        for n in range(3):
            await households.add(conn, village="qilong", name=f"户{n}", id=f"more-{n}")
    picks = [q.options[0].id for q in now_poll.questions]
    for household in ("qilong-001", "qilong-002", "more-0", "more-1", "more-2"):
        await db.run_write(
            partial(polls.vote, poll_id=now_poll.id, household=household, choices=picks,
                    channel="paper", key=b"k" * 32, by="t", scope=Scope("county", "xinjin"))
        )  # fmt: skip
    live = await (await tv.get(f"/centre/polls/{now_poll.id}")).text()
    assert len(svgs(live)) == 2 and "实时结果" in live
    upcoming = await poll_named(tv, "下周的征询")
    page = await (await tv.get(f"/centre/polls/{upcoming.id}")).text()
    assert "<svg" not in page and "征询开始时起实时公布" in page and "未开始" in page
    assert (await tv.get(f"/centre/polls/{upcoming.id}.csv")).status == 409


async def test_another_areas_staff_get_not_found(tv: Client, demo_dir: Path) -> None:
    """A poll of another town, or of the town above a village, does not exist for
    them: not its page, its form, its results nor any of its actions."""
    poll = await poll_named(tv, TOWN_POLL)
    for username in ("anxi-centre", "qilong-duty"):
        csrf = await sign_in(tv, demo_dir, username)
        assert TOWN_POLL not in await (await tv.get("/centre/polls")).text()
        for path in ("", "/edit", ".csv"):
            assert (await tv.get(f"/centre/polls/{poll.id}{path}")).status == 404, path
        for path, data in (
            ("/edit", poll_form(csrf)),
            ("/close", {"csrf": csrf, "confirm": "yes"}),
            ("/paper", {"csrf": csrf, "household": "qilong-001"}),
        ):
            response = await tv.post(f"/centre/polls/{poll.id}{path}", data=data)
            assert response.status == 404, (username, path)
    for hostile in ("abc", "9" * 30, "1%3Bdrop", "-1"):
        assert (await tv.get(f"/centre/polls/{hostile}")).status == 404
    assert (await poll_named(tv, TOWN_POLL)).closed_at is None


async def test_village_staff_cannot_write_a_town_poll(tv: Client, demo_dir: Path) -> None:
    """A village's duty room asks its own village only: no town (nor other village)
    is offered, and one posted anyway is refused."""
    csrf = await sign_in(tv, demo_dir, "qilong-duty")
    form = await (await tv.get("/centre/polls/new")).text()
    assert 'value="village:qilong"' in form and "town:" not in form
    before = await count_polls(tv)
    for place in ("town:puxing", "village:anxicun", "village:nowhere", ""):
        response = await tv.post("/centre/polls/new", data=poll_form(csrf, place=place))
        assert response.status == 400 and "请选择您辖区内的村" in await response.text(), place
    assert await count_polls(tv) == before


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"q0_options": "\n".join(f"选项{n}" for n in range(11))}, "第 1 题的选项：最多 10 个"),
        ({"q0_text": ""}, "第 1 题的题目：不能为空"),
        ({"q1_options": "早上"}, "第 2 题的选项：至少 2 个"),
        ({"q0_max": "3"}, "第 1 题：可选项数多于选项数"),
        ({"q0_max": "many"}, "第 1 题的最多可选项数：请填写整数"),
        ({"q0_options": "村口\n村口"}, "第 1 题：有两个选项相同"),
        ({"q0_text": "", "q0_options": "", "q1_text": "", "q1_options": ""}, "问题：至少 1 个"),
        ({"closes_at": "2020-01-01T08:00"}, "结束时间必须晚于开始时间"),
        ({"opens_at": "tomorrow"}, "开始时间：请填写日期和时间"),
        ({"opens_at": "1999-12-31T23:00"}, "开始时间：请填写日期和时间"),
        ({"closes_at": "2026-02-30T10:00"}, "结束时间：请填写日期和时间"),
        ({"title": "长" * 101}, "征询标题：最多 100 个字"),
        ({"title": "   "}, "征询标题：不能为空"),
        ({"title": "a\x1bb"}, "征询标题：只能是一行文字"),
        ({"description": "说" * 301}, "征询说明：最多 300 个字"),
        ({"results": "sometimes"}, "结果：请从给出的选项中选择"),
    ],
)
async def test_mistaken_forms_come_back_as_typed(
    tv: Client, demo_dir: Path, changes: dict[str, str], message: str
) -> None:
    """A refused form says what is wrong, in the reader's language, and keeps what was
    typed so nothing has to be written twice."""
    csrf = await sign_in(tv, demo_dir, "qilong-duty")
    before = await count_polls(tv)
    data = poll_form(csrf, **changes)
    response = await tv.post("/centre/polls/new", data=data)
    page = await response.text()
    assert response.status == 400
    problem = re.search(r'<p class="problem" role="alert">(.*?)</p>', page)
    assert problem is not None
    assert message in problem.group(1)
    assert 'value="希望的收运时间"' in page or changes.get("q1_text") == ""
    assert await count_polls(tv) == before


async def test_hostile_requests(tv: Client, demo_dir: Path) -> None:
    """Markup in a title is text; forms without this session's CSRF token, or larger
    than any real form, change nothing."""
    csrf = await sign_in(tv, demo_dir, "qilong-duty")
    hostile = "<script>alert(1)</script>"
    response = await tv.post("/centre/polls/new", data=poll_form(csrf, title=hostile))
    assert response.status == 200
    poll = await poll_named(tv, hostile)
    for path in ("/centre/polls", f"/centre/polls/{poll.id}"):
        page = await (await tv.get(path)).text()
        assert hostile not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    before = await count_polls(tv)
    for path, data in (
        ("/centre/polls/new", poll_form("forged-token-forged-token-forged")),
        (f"/centre/polls/{poll.id}/edit", {k: v for k, v in poll_form(csrf).items()
                                           if k != "csrf"}),
        (f"/centre/polls/{poll.id}/close", {"confirm": "yes"}),
        (f"/centre/polls/{poll.id}/paper", {"household": "qilong-001"}),
    ):  # fmt: skip
        assert (await tv.post(path, data=data)).status == 403, path
    response = await tv.post(
        "/centre/polls/new", data=poll_form(csrf), headers={"Origin": "http://evil.example"}
    )
    assert response.status == 403
    big = await tv.post(
        "/centre/polls/new",
        data=io.BytesIO(urlencode(poll_form(csrf, description="x" * 2_000_000)).encode()),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert big.status == 413
    assert await count_polls(tv) == before
    unchanged = await tv.app[DATABASE].run_read(partial(polls.get, poll_id=poll.id))
    assert unchanged.closed_at is None and unchanged.title == hostile
    signed_out = await tv.post("/centre/logout", data={"csrf": csrf}, allow_redirects=False)
    assert signed_out.status == 303
    response = await tv.get(f"/centre/polls/{poll.id}.csv", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"].startswith("/centre/login")


async def test_the_console_speaks_english_when_asked(tv: Client, demo_dir: Path) -> None:
    """Messages made in code (form problems) follow the console's language too."""
    csrf = await sign_in(tv, demo_dir, "qilong-duty")
    await tv.get("/centre/lang/en?next=/centre/polls")
    assert "New poll" in await (await tv.get("/centre/polls")).text()
    response = await tv.post("/centre/polls/new", data=poll_form(csrf, q0_max="3"))
    assert "Question 1: more answers allowed than there are options" in await response.text()


# --- the chart ------------------------------------------------------------------------


def test_share_bars_write_counts_and_shares() -> None:
    """Each option's count and its share of the households that voted are written out
    (not only drawn), in one colour, longest names shortened but kept as tooltips."""
    long_option = "卫生室门口一个名字特别特别特别长的位置"
    root = ET.fromstring(  # noqa: S314 — our own output
        str(share_bars("路灯最需要装在：", ["村口", "广场", long_option], [3.0, 0.0, 1.0], 4, "无"))
    )
    assert root.get("role") == "img" and root.get("viewBox", "").startswith("0 0 800 ")
    drawn = [r for r in root.iter(f"{SVG}rect") if r.get("class") == "bar"]
    assert len(drawn) == 2 and {r.get("fill") for r in drawn} == {PALETTE[0]}
    widths = [float(r.get("width", "0")) for r in drawn]
    assert widths[0] == pytest.approx(3 * widths[1], abs=0.2)  # coordinates are rounded
    values = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "value"]
    assert values == ["3 (75 %)", "0 (0 %)", "1 (25 %)"]
    assert root.findtext(f"{SVG}desc") == f"村口: 3 (75 %); 广场: 0 (0 %); {long_option}: 1 (25 %)"
    cut = next(t for t in root.iter(f"{SVG}text") if t.findtext(f"{SVG}title") == long_option)
    assert "".join(child.tail or "" for child in cut).endswith("…")


def test_share_bars_escape_and_fit_hostile_or_long_text() -> None:
    """Option texts and questions are typed by people: shown as text, never markup; a
    question too long for one line is shortened on screen and whole for readers."""
    hostile = "<script>alert(1)</script>"
    question = "问" * 200
    chart = share_bars(question, [hostile, "</svg><svg onload=alert(1)>"], [1.0, 2.0], 2, hostile)
    assert "<script" not in chart and "<svg onload" not in chart
    root = ET.fromstring(str(chart))  # noqa: S314 — our own output
    assert root.get("aria-label") == question and root.findtext(f"{SVG}title") == question
    heading = next(t for t in root.iter(f"{SVG}text") if t.get("font-weight") == "bold")
    assert (heading.text or "").endswith("…") and len(heading.text or "") < 60
    assert hostile in [t.text for t in root.iter(f"{SVG}title")]  # the whole option


def test_share_bars_without_voters_say_so() -> None:
    """No voters is a sentence, not an empty frame (nor a division by zero)."""
    chart = share_bars("位置", ["村口", "广场"], [0.0, 0.0], 0, "还没有住户参与。")
    root = ET.fromstring(str(chart))  # noqa: S314 — our own output
    assert "还没有住户参与。" in [t.text for t in root.iter(f"{SVG}text")]
    assert not [r for r in root.iter(f"{SVG}rect") if r.get("class") == "bar"]
    with pytest.raises(ValueError, match="1 values for 2 categories"):
        share_bars("位置", ["村口", "广场"], [1.0], 1, "无")
