"""Opinion polls on SQLite and PostgreSQL: one vote per household (concurrent attempts
included), changes until close, locked polls, paper votes against the same roll, the
roll kept apart from the answers, scope, hostile values."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError

from xueliang import households, polls
from xueliang.errors import Conflict, InvalidInput, NotFound
from xueliang.geography import Scope
from xueliang.storage import Database
from xueliang.storage.tables import poll_answers, poll_voters

NOW = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
KEY = b"k" * 32
COUNTY = Scope("county", "xinjin")


def poll_data(**changes: Any) -> dict[str, Any]:
    return {
        "title": "路灯装在哪里？", "village": "qilong", "opens_at": NOW - timedelta(hours=1),
        "closes_at": NOW + timedelta(days=7),
        "questions": [
            {"text": "位置", "options": ["村口", "广场", "桥头"]},
            {"text": "活动", "max_choices": 2, "options": ["电影", "川剧", "讲座"]},
        ],
        **changes,
    }  # fmt: skip


@pytest.fixture
async def village(county: Database) -> Database:
    async with county.transaction() as conn:
        for n in range(5):
            await households.add(conn, village="qilong", name=f"家{n}", id=f"q{n}")
        await households.add(conn, village="other", name="同镇", id="o1")
        await households.add(conn, village="anxicun", name="外镇", id="a1")
    return county


async def create(db: Database, scope: Scope = COUNTY, **changes: Any) -> polls.Poll:
    data = polls.checked(poll_data(**changes))
    poll_id = await db.run_write(partial(polls.create, data=data, scope=scope, by="staff", now=NOW))
    return await db.run_read(partial(polls.get, poll_id=poll_id))


def choices(poll: polls.Poll, *picks: tuple[int, int]) -> list[int]:
    return [poll.questions[q].options[o].id for q, o in picks]


async def vote(
    db: Database, poll: polls.Poll, household: str, picks: list[int], **extra: Any
) -> bool:
    options: dict[str, Any] = {"channel": "tv", "key": KEY, "now": NOW}
    options.update(extra)
    return await db.run_write(
        partial(polls.vote, poll_id=poll.id, household=household, choices=picks, **options)
    )


async def test_vote_change_and_results(village: Database) -> None:
    poll = await create(village)
    assert await vote(village, poll, "q1", choices(poll, (0, 0), (1, 0), (1, 1))) is False
    assert await vote(village, poll, "q2", choices(poll, (0, 1), (1, 2))) is False
    assert await vote(village, poll, "q1", choices(poll, (0, 2), (1, 0))) is True  # changed
    counted = await village.run_read(partial(polls.tally, poll_id=poll.id))
    assert counted.voters == 2 and counted.by_channel == {"tv": 2}
    by_text = {o.text: counted.counts.get(o.id, 0) for q in poll.questions for o in q.options}
    assert by_text == {"村口": 0, "广场": 1, "桥头": 1, "电影": 1, "川剧": 0, "讲座": 1}
    mine = await village.run_read(partial(polls.my_choices, poll=poll, household="q1", key=KEY))
    assert mine == frozenset(choices(poll, (0, 2), (1, 0)))
    assert not poll.results_visible(NOW, 2)
    await village.run_write(partial(polls.close, poll_id=poll.id, scope=COUNTY, now=NOW))
    closed = await village.run_read(partial(polls.get, poll_id=poll.id))
    assert closed.status(NOW) == "closed" and closed.results_visible(NOW, 2)
    live = await create(village, title="实时", results="live")
    assert not live.results_visible(NOW, polls.LIVE_MIN_VOTERS - 1)
    assert live.results_visible(NOW, polls.LIVE_MIN_VOTERS)
    with pytest.raises(polls.PollClosed):
        await vote(village, closed, "q3", choices(poll, (0, 0), (1, 0)))


async def test_the_roll_cannot_tell_how_a_household_voted(village: Database) -> None:
    poll = await create(village)
    await vote(village, poll, "q1", choices(poll, (0, 0), (1, 0)))
    async with village.read() as conn:
        roll = (await conn.execute(select(poll_voters))).mappings().all()
        answers = (await conn.execute(select(poll_answers))).mappings().all()
    assert set(roll[0]) == {"poll_id", "household_id", "channel", "recorded_by", "changes"}
    assert set(answers[0]) == {"poll_id", "ballot", "option_id"}
    assert all("q1" not in a["ballot"] for a in answers)
    # Without the installation's key the ballot does not lead back to the household.
    assert answers[0]["ballot"] != polls.ballot(b"another key" * 3, poll.id, "q1")


async def test_concurrent_votes_of_one_household_count_once(village: Database, db_url: str) -> None:
    locked = await create(village, lock_votes=True)
    free = await create(village, title="可改票")
    engines = [Database(db_url) for _ in range(5)]
    try:
        first = await asyncio.gather(
            *(
                vote(engines[n % 5], locked, "q1", choices(locked, (0, n % 3), (1, 0)))
                for n in range(50)
            ),
            return_exceptions=True,
        )
        second = await asyncio.gather(
            *(
                vote(engines[n % 5], free, "q1", choices(free, (0, n % 3), (1, n % 3)))
                for n in range(50)
            ),
            return_exceptions=True,
        )
    finally:
        for engine in engines:
            await engine.close()
    assert sum(1 for r in first if r is False) == 1
    assert all(isinstance(r, polls.AlreadyVoted) for r in first if r is not False)
    assert all(isinstance(r, bool) for r in second), second  # every change is accepted…
    for poll in (locked, free):  # …and one household is one ballot of two answers
        counted = await village.run_read(partial(polls.tally, poll_id=poll.id))
        assert counted.voters == 1 and sum(counted.counts.values()) == 2, counted


async def test_paper_votes_share_the_roll(village: Database) -> None:
    poll = await create(village)
    qilong = Scope("village", "qilong")
    await vote(
        village,
        poll,
        "q1",
        choices(poll, (0, 0), (1, 0)),
        channel="paper",
        by="staff",
        scope=qilong,
    )
    with pytest.raises(polls.AlreadyVoted):  # paper twice
        await vote(
            village,
            poll,
            "q1",
            choices(poll, (0, 1), (1, 0)),
            channel="paper",
            by="staff",
            scope=qilong,
        )
    await vote(village, poll, "q2", choices(poll, (0, 1), (1, 0)))
    with pytest.raises(polls.AlreadyVoted):  # paper does not overrule the TV
        await vote(
            village,
            poll,
            "q2",
            choices(poll, (0, 0), (1, 0)),
            channel="paper",
            by="staff",
            scope=qilong,
        )
    with pytest.raises(NotFound):  # staff of another village
        await vote(village, poll, "q3", choices(poll, (0, 0), (1, 0)), channel="paper", by="s",
                   scope=Scope("village", "anxicun"))  # fmt: skip
    counted = await village.run_read(partial(polls.tally, poll_id=poll.id))
    assert counted.by_channel == {"paper": 1, "tv": 1}
    text = polls.results_csv(poll, counted)
    assert "村口" in text and "paper,1" in text
    # The household that answered on paper changes its answer on the TV: one vote, by TV.
    assert await vote(village, poll, "q1", choices(poll, (0, 2), (1, 1))) is True
    counted = await village.run_read(partial(polls.tally, poll_id=poll.id))
    assert counted.by_channel == {"tv": 2} and sum(counted.counts.values()) == 4


async def test_who_may_vote_and_see(village: Database) -> None:
    village_poll = await create(village)
    town_poll = await create(village, village=None, town="puxing", title="镇里的")
    for household, poll in (("a1", village_poll), ("o1", village_poll), ("a1", town_poll)):
        with pytest.raises(NotFound):
            await vote(village, poll, household, choices(poll, (0, 0), (1, 0)))
    await vote(village, town_poll, "o1", choices(town_poll, (0, 0), (1, 0)))
    seen = await village.run_read(partial(polls.for_household, household="q1", now=NOW))
    assert {p.id for p in seen} == {village_poll.id, town_poll.id}
    assert await village.run_read(partial(polls.for_household, household="a1", now=NOW)) == []
    with pytest.raises(NotFound):
        await village.run_read(
            partial(polls.for_household_one, poll_id=village_poll.id, household="a1", now=NOW)
        )
    upcoming = await create(village, title="下周", opens_at=NOW + timedelta(days=1))
    with pytest.raises(polls.PollClosed):
        await vote(village, upcoming, "q1", choices(upcoming, (0, 0), (1, 0)))
    seen = await village.run_read(partial(polls.for_household, household="q1", now=NOW))
    assert upcoming.id not in {p.id for p in seen}


async def test_bad_choices(village: Database) -> None:
    poll = await create(village)
    other = await create(village, title="别的")
    for picks in (
        [],  # nothing
        choices(poll, (0, 0)),  # second question unanswered
        choices(poll, (0, 0), (0, 1), (1, 0)),  # two on a single-choice question
        choices(poll, (0, 0), (1, 0), (1, 1), (1, 2)),  # three where two are allowed
        choices(poll, (0, 0), (1, 0)) + choices(poll, (1, 0)),  # twice the same
        choices(other, (0, 0), (1, 0)),  # another poll's options
        [10**12, -1],
    ):
        with pytest.raises(InvalidInput):
            await vote(village, poll, "q1", picks)
    assert not await village.run_read(partial(polls.has_voted, poll_id=poll.id, household="q1"))


async def test_staff_scope_and_edits(village: Database) -> None:
    with pytest.raises(NotFound):  # a village's staff cannot run a town poll
        await create(village, Scope("village", "qilong"), village=None, town="puxing")
    with pytest.raises(NotFound):
        await create(village, Scope("town", "anxi"))
    poll = await create(village, Scope("town", "puxing"))
    with pytest.raises(NotFound):
        await village.run_read(partial(polls.get, poll_id=poll.id, scope=Scope("town", "anxi")))
    edited = polls.checked(poll_data(title="改过的"))
    await village.run_write(
        partial(polls.update_poll, poll_id=poll.id, data=edited, scope=COUNTY, now=NOW)
    )
    poll = await village.run_read(partial(polls.get, poll_id=poll.id))
    assert poll.title == "改过的"
    await vote(village, poll, "q1", choices(poll, (0, 0), (1, 0)))
    with pytest.raises(Conflict):
        await village.run_write(
            partial(polls.update_poll, poll_id=poll.id, data=edited, scope=COUNTY, now=NOW)
        )


def test_poll_validation() -> None:
    bad: dict[str, Any]
    for bad in (
        {"village": None}, {"town": "puxing"}, {"title": ""}, {"title": "x" * 101},
        {"title": "a\x00b"}, {"closes_at": NOW - timedelta(days=1)},
        {"opens_at": datetime(2026, 11, 30)}, {"results": "sometimes"},
        {"questions": []}, {"questions": [{"text": "q", "options": ["only one"]}]},
        {"questions": [{"text": "q", "options": ["a", "a"]}]},
        {"questions": [{"text": "q", "max_choices": 3, "options": ["a", "b"]}]},
        {"questions": [{"text": "q", "options": [str(n) for n in range(11)]}]},
        {"extra": "field"},
    ):  # fmt: skip
        with pytest.raises(InvalidInput):
            polls.checked(poll_data(**bad))


async def test_rows_written_with_a_vote_are_a_crowd(village: Database, db_url: str) -> None:
    """On PostgreSQL rows written in one transaction share its id (xmin): the answer
    rows a vote writes must not single out that household's answer."""
    poll = await create(village, lock_votes=True)
    for n in range(5):
        await vote(village, poll, f"q{n}", choices(poll, (0, n % 3), (1, n % 2)))
    if not db_url.startswith("postgresql"):  # SQLite: no row id; rows kept in key order
        async with village.read() as conn:
            with pytest.raises(OperationalError):
                await conn.exec_driver_sql("SELECT rowid FROM poll_answers")
            ddl = await conn.scalar(
                text("SELECT sql FROM sqlite_master WHERE name = 'poll_answers'")
            )
        assert "WITHOUT ROWID" in ddl
        return
    async with village.read() as conn:
        roll: list[Any] = list(
            await conn.exec_driver_sql("SELECT household_id, xmin::text FROM poll_voters")
        )
        answers: list[Any] = list(
            await conn.exec_driver_sql("SELECT ballot, xmin::text FROM poll_answers")
        )
    ballots = {row[0] for row in answers}
    assert len(ballots) == 5
    for row in roll:
        shared = {a[0] for a in answers if a[1] == row[1]}
        assert len(shared) in (0, 5), shared  # nobody's transaction holds their ballot alone


async def test_a_changed_key_cannot_count_a_household_twice(village: Database) -> None:
    poll = await create(village)
    await vote(village, poll, "q1", choices(poll, (0, 0), (1, 0)))
    with pytest.raises(Conflict):
        await vote(village, poll, "q1", choices(poll, (0, 1), (1, 0)), key=b"another key" * 3)
    counted = await village.run_read(partial(polls.tally, poll_id=poll.id))
    assert counted.voters == 1 and sum(counted.counts.values()) == 2


async def test_closed_polls_stay_closed_and_none_opens_in_the_past(village: Database) -> None:
    with pytest.raises(InvalidInput):
        await create(village, opens_at=NOW - timedelta(days=2), closes_at=NOW - timedelta(days=1))
    poll = await create(village)
    await village.run_write(partial(polls.close, poll_id=poll.id, scope=COUNTY, now=NOW))
    later = polls.checked(poll_data(closes_at=NOW + timedelta(days=30)))
    with pytest.raises(Conflict):  # moving the close would reopen it
        await village.run_write(
            partial(polls.update_poll, poll_id=poll.id, data=later, scope=COUNTY, now=NOW)
        )
    assert not await village.run_write(partial(polls.close, poll_id=poll.id, scope=COUNTY, now=NOW))
