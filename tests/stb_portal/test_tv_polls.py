"""Opinion polls on the TV over HTTP: list, one question per screen, confirmation,
"you have voted", change until close, results after close, multi-choice limits,
locked polls, and what a hostile box might try."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from functools import partial
from pathlib import Path
from urllib.parse import parse_qs

from sqlalchemy import func, select

from stb_portal.tv.poll_views import picked
from tests.stb_portal.conftest import Client, csrf_of
from xueliang import households, polls
from xueliang.geography import Scope
from xueliang.signing import derive, load_secret_key
from xueliang.storage.tables import poll_answers, poll_voters
from xueliang.storage.types import utcnow
from xueliang.web import DATABASE

COUNTY = Scope("county", "xinjin")


def links(page: str) -> dict[str, str]:
    """Option text → its link, from a question page."""
    found = re.findall(
        r'<a id="o-\d+" class="f row[^"]*"[^>]*href="([^"]+)">'
        r'<span class="num">\d+</span> ([^<]+)</a>',
        page,
    )
    return {text: html.unescape(href) for href, text in found}


async def csrf(client: Client) -> str:
    """The box's CSRF token (any of its forms carries it)."""
    return csrf_of(await (await client.get("/tv/alarm")).text())


async def poll_id(client: Client, title: str) -> int:
    page = await (await client.get("/tv/polls")).text()
    found = re.search(
        r'href="/tv/polls/(\d+)"><span class="num">\d+</span> ' + re.escape(title), page
    )
    assert found, page
    return int(found.group(1))


async def vote_through(client: Client, ident: int, answers: list[str], change: bool = False) -> str:
    """Answer each single-choice question by following its option link, then OK."""
    page = await (await client.get(f"/tv/polls/{ident}" + ("?change=1" if change else ""))).text()
    for answer in answers:
        target = links(page)[answer]
        page = await (await client.get(target)).text()
    assert 'action="/tv/polls/' in page, page
    a = re.search(r'name="a" value="([\d.]*)"', page)
    assert a
    response = await client.post(
        f"/tv/polls/{ident}/vote",
        data={"csrf": csrf_of(page), "a": a.group(1)},
        allow_redirects=False,
    )
    assert response.status == 303
    return await (await client.get(response.headers["Location"])).text()


async def test_vote_change_and_results_after_close(paired: Client) -> None:
    listing = await (await paired.get("/tv/polls")).text()
    assert "村口路灯装在哪里？" in listing and "普兴镇冬季文化活动征询" in listing
    ident = await poll_id(paired, "村口路灯装在哪里？")
    done = await vote_through(paired, ident, ["文化广场"])
    assert 'id="thanks"' in done and "文化广场" in done and 'id="change"' in done
    assert 'class="bar"' not in done  # results only after the close
    assert "您已参与" in await (await paired.get("/tv/polls")).text()
    changed = await vote_through(paired, ident, ["3组桥头"], change=True)
    assert "3组桥头" in changed
    db = paired.app[DATABASE]
    counted = await db.run_read(partial(polls.tally, poll_id=ident))
    assert counted.voters == 1 and sum(counted.counts.values()) == 1
    await db.run_write(partial(polls.close, poll_id=ident, scope=COUNTY, now=utcnow()))
    closed = await (await paired.get(f"/tv/polls/{ident}")).text()
    assert "本次征询已结束" in closed and 'class="bar"' in closed and 'id="change"' not in closed
    assert re.search(r"3组桥头 · 1 \(100%\)", closed) and re.search(
        r"村口公交站 · 0 \(0%\)", closed
    )
    # A closed poll takes no vote, whatever is posted.
    response = await paired.post(
        f"/tv/polls/{ident}/vote", data={"csrf": await csrf(paired), "a": str(min(counted.counts))},
        allow_redirects=False,
    )  # fmt: skip
    assert response.status == 303
    assert (await db.run_read(partial(polls.tally, poll_id=ident))).voters == 1


async def test_multiple_choice_up_to_the_limit(paired: Client) -> None:
    ident = await poll_id(paired, "普兴镇冬季文化活动征询")
    page = await (await paired.get(f"/tv/polls/{ident}")).text()
    assert "最多选 2 项" in page and 'id="next"' not in page
    page = await (await paired.get(links(page)["坝坝电影"])).text()
    assert 'class="f row chosen"' in page and 'id="next"' in page
    page = await (await paired.get(links(page)["法律知识讲座"])).text()
    assert page.count("row chosen") == 2 and 'class="note"' in page  # full
    page = await (await paired.get(links(page)["川剧演出"])).text()
    assert page.count("row chosen") == 2  # a third is not taken
    nxt = re.search(r'id="next" class="f button" href="([^"]+)"', page)
    assert nxt
    confirm = await (await paired.get(html.unescape(nxt.group(1)))).text()
    assert "坝坝电影" in confirm and "法律知识讲座" in confirm and "川剧演出" not in confirm
    a = re.search(r'name="a" value="([\d.]+)"', confirm)
    assert a
    response = await paired.post(
        f"/tv/polls/{ident}/vote", data={"csrf": csrf_of(confirm), "a": a.group(1)}
    )
    assert response.status == 200
    counted = await paired.app[DATABASE].run_read(partial(polls.tally, poll_id=ident))
    assert counted.voters == 1 and sum(counted.counts.values()) == 2


async def test_locked_poll_counts_once(paired: Client) -> None:
    db = paired.app[DATABASE]
    now = utcnow()
    data = polls.checked({
        "title": "锁定的", "village": "qilong", "opens_at": now - timedelta(minutes=1),
        "closes_at": now + timedelta(days=1), "lock_votes": True, "results": "live",
        "questions": [{"text": "同意吗", "options": ["同意", "不同意"]}],
    })  # fmt: skip
    ident = await db.run_write(partial(polls.create, data=data, scope=COUNTY, by="t", now=now))
    done = await vote_through(paired, ident, ["同意"])
    assert 'id="change"' not in done
    assert 'class="bar"' not in done and "5 户" in done  # live, once 5 households answered
    page = await (await paired.get(f"/tv/polls/{ident}?change=1")).text()
    assert 'id="o-' not in page  # no way back into the question
    option = (await db.run_read(partial(polls.get, poll_id=ident))).questions[0].options[1].id
    await paired.post(
        f"/tv/polls/{ident}/vote", data={"csrf": await csrf(paired), "a": str(option)}
    )
    counted = await db.run_read(partial(polls.tally, poll_id=ident))
    assert counted.voters == 1 and counted.counts.get(option, 0) == 0
    # Four more households answer (on paper): the live tally shows.
    async with db.transaction() as conn:
        for n in range(4):
            await households.add(conn, village="qilong", name=f"纸{n}", id=f"paper-{n}")
    for n in range(4):
        await db.run_write(
            partial(polls.vote, poll_id=ident, household=f"paper-{n}", choices=[option],
                    channel="paper", key=b"k" * 32, by="staff", scope=COUNTY)
        )  # fmt: skip
    shown = await (await paired.get(f"/tv/polls/{ident}")).text()
    assert shown.count('class="bar"') == 2 and "不同意 · 4 (80%)" in shown


async def test_hostile_values(paired: Client) -> None:
    db = paired.app[DATABASE]
    ident = await poll_id(paired, "村口路灯装在哪里？")
    town = await poll_id(paired, "普兴镇冬季文化活动征询")
    page = await (await paired.get(f"/tv/polls/{ident}")).text()
    token = await csrf(paired)
    other = (await db.run_read(partial(polls.get, poll_id=town))).questions[0].options[0].id
    for a in ("", "x", "1.2.3", "9" * 40, f"{other}", "." * 5000, "-1", "１"):
        response = await paired.post(f"/tv/polls/{ident}/vote", data={"csrf": token, "a": a},
                                     allow_redirects=False)  # fmt: skip
        assert response.status == 303 and "voted" not in response.headers["Location"], a
    assert (await paired.post(f"/tv/polls/{ident}/vote", data={"a": "1"})).status == 403
    here = f"/tv/polls/{ident}"
    for path in ("/tv/polls/999", "/tv/polls/x", "/tv/polls/1e2", "/tv/polls/999/confirm?a=1",
                 f"{here}?q=99&a=zz&f=<script>", f"{here}/confirm?a=junk"):  # fmt: skip
        response = await paired.get(path)
        assert response.status in (200, 404), path
        assert "<script>" not in await response.text()
    async with db.read() as conn:
        assert await conn.scalar(select(func.count()).select_from(poll_voters)) == 0
        assert await conn.scalar(select(func.count()).select_from(poll_answers)) == 0
    assert "路灯最需要装在" in page


async def test_another_villages_poll_does_not_exist(paired: Client) -> None:
    db = paired.app[DATABASE]
    now = utcnow()
    data = polls.checked({
        "title": "安西的", "town": "anxi", "opens_at": now - timedelta(minutes=1),
        "closes_at": now + timedelta(days=1),
        "questions": [{"text": "q", "options": ["a", "b"]}],
    })  # fmt: skip
    ident = await db.run_write(partial(polls.create, data=data, scope=COUNTY, by="t", now=now))
    assert "安西的" not in await (await paired.get("/tv/polls")).text()
    assert (await paired.get(f"/tv/polls/{ident}")).status == 404
    option = (await db.run_read(partial(polls.get, poll_id=ident))).questions[0].options[0].id
    response = await paired.post(
        f"/tv/polls/{ident}/vote", data={"csrf": await csrf(paired), "a": str(option)}
    )
    assert response.status == 404
    assert (await db.run_read(partial(polls.tally, poll_id=ident))).voters == 0


async def test_choices_never_travel_readable_in_a_url(paired: Client, demo_dir: Path) -> None:
    """History, proxies and access logs see URLs: a household's choices stay sealed in
    them, and a draft sealed for another household starts afresh."""
    ident = await poll_id(paired, "普兴镇冬季文化活动征询")
    poll = await paired.app[DATABASE].run_read(partial(polls.get, poll_id=ident))
    option_ids = {o.id for q in poll.questions for o in q.options}
    page = await (await paired.get(f"/tv/polls/{ident}")).text()
    page = await (await paired.get(links(page)["坝坝电影"])).text()
    for href in re.findall(r'href="(/tv/polls[^"]*)"', page):
        query = parse_qs(html.unescape(href).partition("?")[2])
        assert set(query) <= {"d", "change", "r", "p"}, href  # nothing but the sealed draft
        for token in query.get("d", []):
            assert len(token) >= 40 and not re.fullmatch(r"[\d.:]*", token), href
            assert not set(picked(token)) & option_ids, href  # not a readable list of ids
    sealed = links(page)["川剧演出"]
    # The same link opened by another household's box shows a fresh question.
    other = await paired.get(
        f"/tv/pair/{derive(load_secret_key(demo_dir), 'demo-pair', 'qilong-002', length=43)}"
    )
    assert other.status == 200
    fresh = await (await paired.get(sealed)).text()
    assert "row chosen" not in fresh
    # Results of a multi-question poll page through links too (scripting off).
    db = paired.app[DATABASE]
    now = utcnow()
    data = polls.checked({
        "title": "两个问题", "village": "qilong", "opens_at": now - timedelta(minutes=1),
        "closes_at": now + timedelta(days=1), "results": "live",
        "questions": [{"text": "一", "options": ["a", "b"]}, {"text": "二", "options": ["c", "d"]}],
    })  # fmt: skip
    two = await db.run_write(partial(polls.create, data=data, scope=COUNTY, by="t", now=now))
    await vote_through(paired, two, ["a", "c"])
    await db.run_write(partial(polls.close, poll_id=two, scope=COUNTY, now=utcnow()))
    shown = await (await paired.get(f"/tv/polls/{two}")).text()
    assert 'id="next-question"' in shown and 'href="?r=1"' in shown


async def test_many_polls_are_paged(paired: Client) -> None:
    db = paired.app[DATABASE]
    now = utcnow()
    for n in range(6):
        data = polls.checked({
            "title": f"第{n}个", "village": "qilong", "opens_at": now - timedelta(minutes=1),
            "closes_at": now + timedelta(days=2 + n),
            "questions": [{"text": "q", "options": ["a", "b"]}],
        })  # fmt: skip
        await db.run_write(partial(polls.create, data=data, scope=COUNTY, by="t", now=now))
    first = await (await paired.get("/tv/polls")).text()
    assert first.count('class="f row"') == 4 and 'data-pagedown="?p=2"' in first
    second = await (await paired.get("/tv/polls?p=2")).text()
    assert second.count('class="f row"') == 4 and 'id="prev"' in second  # 8 polls in all
    assert (await paired.get("/tv/polls?p=99999999")).status == 200
