"""Opinion polls (意见征询) of a village or a town: one vote per household, from the TV or
on paper entered by staff, counted against one voter roll.

The roll (`poll_voters`: who took part, by which channel) is kept apart from the
answers (`poll_answers`). An answer row carries a ballot, not a household: where votes
may change until the close, the ballot is a keyed hash of (poll, household) that only
this installation's secret key can recompute; where votes are locked, it is random and
nobody can link it back at all. Answer rows have no time and no row id, and each vote
puts its rows in with up to `MIX` earlier ballots rewritten in random order, so the
rows a vote's transaction wrote are a crowd, not one household's answer.

What remains (see the README): with the secret key, changeable ballots can be
recomputed; PostgreSQL keeps dead row versions until vacuum, and both backends' write-
ahead logs hold recent writes in order, readable by someone with the files.
"""

from __future__ import annotations

import csv
import io
import random
import secrets
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Connection, and_, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from xueliang import households, validation
from xueliang.errors import Conflict, InvalidInput, NotFound
from xueliang.geography import Scope
from xueliang.signing import derive
from xueliang.stats import csv_text
from xueliang.storage.tables import (
    poll_answers,
    poll_options,
    poll_questions,
    poll_voters,
    polls,
    villages,
)
from xueliang.storage.types import utcnow

Results = Literal["after_close", "live"]
Channel = Literal["tv", "paper"]
Status = Literal["upcoming", "open", "closed"]
RESULTS: tuple[str, ...] = get_args(Results)
# Closed polls stay on the TV this long, with their results.
SHOWN_AFTER_CLOSE = timedelta(days=30)
MAX_QUESTIONS = 10
MAX_OPTIONS = 10
# Live results wait for this many households (see `Poll.results_visible`).
LIVE_MIN_VOTERS = 5
# Earlier ballots rewritten with each vote (see `_cast`).
MIX = 32
_SHUFFLE = random.SystemRandom()

_Line = Annotated[str, Field(min_length=1, pattern=r"^[^\x00-\x1f\x7f]+$")]


class QuestionInput(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    text: Annotated[_Line, Field(max_length=200)]
    max_choices: Annotated[int, Field(ge=1, le=MAX_OPTIONS)] = 1
    options: Annotated[
        list[Annotated[_Line, Field(max_length=100)]],
        Field(min_length=2, max_length=MAX_OPTIONS),
    ]

    @model_validator(mode="after")
    def _fits(self) -> QuestionInput:
        if self.max_choices > len(self.options):
            raise ValueError("max_choices is more than there are options")
        if len(set(self.options)) != len(self.options):
            raise ValueError("two options are the same")
        return self


class PollInput(BaseModel):
    """A poll as staff write it: for a village, or for a whole town."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    title: Annotated[_Line, Field(max_length=100)]
    description: Annotated[str, Field(max_length=300, pattern=r"^[^\x00-\x1f\x7f]*$")] = ""
    village: str | None = None
    town: str | None = None
    opens_at: datetime
    closes_at: datetime
    results: Results = "after_close"
    lock_votes: bool = False
    questions: Annotated[list[QuestionInput], Field(min_length=1, max_length=MAX_QUESTIONS)]

    @model_validator(mode="after")
    def _consistent(self) -> PollInput:
        if (self.village is None) == (self.town is None):
            raise ValueError("a poll is for one village or one town")
        if self.opens_at.tzinfo is None or self.closes_at.tzinfo is None:
            raise ValueError("times need a time zone")
        if self.closes_at <= self.opens_at:
            raise ValueError("closes_at must be after opens_at")
        if self.closes_at - self.opens_at > timedelta(days=366):
            raise ValueError("a poll runs at most a year")
        return self


def checked(data: dict[str, Any]) -> PollInput:
    return validation.model(PollInput, data, "poll")


class PollClosed(Conflict):
    """The poll is not open (not yet, or no longer)."""


class AlreadyVoted(Conflict):
    """This household is on the roll and the poll does not let it change its vote."""


@dataclass(frozen=True, slots=True)
class Option:
    id: int
    text: str


@dataclass(frozen=True, slots=True)
class Question:
    id: int
    text: str
    max_choices: int
    options: tuple[Option, ...]


@dataclass(frozen=True, slots=True)
class Poll:
    id: int
    town: str
    village: str | None
    place_name: str
    title: str
    description: str
    opens_at: datetime
    closes_at: datetime
    closed_at: datetime | None
    results: str
    lock_votes: bool
    created_by: str
    questions: tuple[Question, ...]

    def status(self, now: datetime) -> Status:
        if self.closed_at is not None or now >= self.closes_at:
            return "closed"
        return "open" if now >= self.opens_at else "upcoming"

    def results_visible(self, now: datetime, voters: int) -> bool:
        """Live results once open and `LIVE_MIN_VOTERS` households have answered, if the
        poll says so (before that, a tally that moves by one tells whoever saw a
        neighbour vote how they voted); otherwise only after the close (for staff too:
        nobody steers a poll by watching it)."""
        status = self.status(now)
        if status == "closed":
            return True
        return self.results == "live" and status == "open" and voters >= LIVE_MIN_VOTERS

    def ends_at(self) -> datetime:
        return self.closed_at or self.closes_at

    def covers(self, village: str, town: str) -> bool:
        return self.village == village if self.village is not None else self.town == town

    def option_ids(self) -> dict[int, Question]:
        return {o.id: q for q in self.questions for o in q.options}


@dataclass(frozen=True, slots=True)
class Tally:
    """Counts per option, and the roll by channel."""

    counts: dict[int, int]
    voters: int
    by_channel: dict[str, int]


def _in_scope(scope: Scope) -> Any:
    """Polls staff of `scope` may see and manage: a village's staff their village's
    polls, a town's every poll of the town and its villages, the county all."""
    if scope.level == "county":
        return polls.c.id.is_not(None)
    if scope.level == "town":
        return polls.c.town_id == scope.id
    return polls.c.village_id == scope.id


def _place(conn: Connection, data: PollInput, scope: Scope) -> tuple[str, str | None]:
    """(town, village) of the poll, checked against the author's scope."""
    if data.village is not None:
        town = conn.scalar(select(villages.c.town_id).where(villages.c.id == data.village))
        if town is None or not scope.covers(data.village, town):
            raise NotFound("village", data.village)
        return town, data.village
    assert data.town is not None
    exists = conn.scalar(
        select(func.count()).select_from(villages).where(villages.c.town_id == data.town)
    )
    if scope.level == "village" or not scope.covers(None, data.town) or not exists:
        raise NotFound("town", data.town)
    return data.town, None


def _values(conn: Connection, data: PollInput, scope: Scope, now: datetime) -> dict[str, Any]:
    """The `polls` row of `data` (its closing time ahead, its place checked against
    `scope`)."""
    if data.closes_at <= now:
        raise InvalidInput("closes_at", "must be in the future")
    town, village = _place(conn, data, scope)
    return {
        "town_id": town, "village_id": village, "title": data.title,
        "description": data.description, "opens_at": data.opens_at,
        "closes_at": data.closes_at, "results": data.results, "lock_votes": data.lock_votes,
        "updated_at": now,
    }  # fmt: skip


def create(conn: Connection, data: PollInput, *, scope: Scope, by: str, now: datetime) -> int:
    values = _values(conn, data, scope, now)
    inserted = conn.execute(polls.insert().values(created_by=by, created_at=now, **values))
    assert inserted.inserted_primary_key is not None
    poll_id = int(inserted.inserted_primary_key[0])
    _put_questions(conn, poll_id, data.questions)
    return poll_id


def _put_questions(conn: Connection, poll_id: int, questions: Sequence[QuestionInput]) -> None:
    for position, question in enumerate(questions):
        inserted = conn.execute(
            poll_questions.insert().values(
                poll_id=poll_id,
                position=position,
                text=question.text,
                max_choices=question.max_choices,
            )
        )
        assert inserted.inserted_primary_key is not None
        question_id = int(inserted.inserted_primary_key[0])
        conn.execute(
            poll_options.insert(),
            [
                {"question_id": question_id, "position": n, "text": text}
                for n, text in enumerate(question.options)
            ],
        )


def update_poll(
    conn: Connection, poll_id: int, data: PollInput, *, scope: Scope, now: datetime
) -> None:
    """Replace a poll's text, times and questions; only while nobody has voted and it
    has not closed (moving the closing time would reopen it)."""
    _lock(conn, poll_id)
    if get(conn, poll_id, scope=scope).status(now) == "closed":
        raise Conflict("the poll is closed")
    if _voters(conn, poll_id):
        raise Conflict("votes have been cast: the poll can only be closed now")
    conn.execute(update(polls).where(polls.c.id == poll_id).values(_values(conn, data, scope, now)))
    question_ids = select(poll_questions.c.id).where(poll_questions.c.poll_id == poll_id)
    conn.execute(delete(poll_options).where(poll_options.c.question_id.in_(question_ids)))
    conn.execute(delete(poll_questions).where(poll_questions.c.poll_id == poll_id))
    _put_questions(conn, poll_id, data.questions)


def close(conn: Connection, poll_id: int, *, scope: Scope, now: datetime) -> bool:
    """Close the poll now (results become visible); False when it was closed already
    (closing twice changes nothing)."""
    _lock(conn, poll_id)
    poll = get(conn, poll_id, scope=scope)
    if poll.status(now) == "closed":
        return False
    conn.execute(update(polls).where(polls.c.id == poll_id).values(closed_at=now, updated_at=now))
    return True


def _voters(conn: Connection, poll_id: int) -> int:
    count = conn.scalar(
        select(func.count()).select_from(poll_voters).where(poll_voters.c.poll_id == poll_id)
    )
    return int(count or 0)


def _load(conn: Connection, rows: Sequence[Any]) -> list[Poll]:
    ids = [r.id for r in rows]
    questions: dict[int, list[Any]] = {}
    for q in conn.execute(
        select(poll_questions)
        .where(poll_questions.c.poll_id.in_(ids))
        .order_by(poll_questions.c.position)
    ):
        questions.setdefault(q.poll_id, []).append(q)
    options: dict[int, list[Option]] = {}
    for o in conn.execute(
        select(poll_options)
        .join(poll_questions, poll_questions.c.id == poll_options.c.question_id)
        .where(poll_questions.c.poll_id.in_(ids))
        .order_by(poll_options.c.position)
    ):
        options.setdefault(o.question_id, []).append(Option(o.id, o.text))
    return [
        Poll(
            id=r.id,
            town=r.town_id,
            village=r.village_id,
            place_name=r.place_name,
            title=r.title,
            description=r.description,
            opens_at=r.opens_at,
            closes_at=r.closes_at,
            closed_at=r.closed_at,
            results=r.results,
            lock_votes=r.lock_votes,
            created_by=r.created_by,
            questions=tuple(
                Question(q.id, q.text, q.max_choices, tuple(options.get(q.id, ())))
                for q in questions.get(r.id, ())
            ),
        )
        for r in rows
    ]


def _select() -> Any:
    from xueliang.storage.tables import towns

    place = func.coalesce(villages.c.name, towns.c.name).label("place_name")
    return (
        select(polls, place)
        .join(towns, towns.c.id == polls.c.town_id)
        .outerjoin(villages, villages.c.id == polls.c.village_id)
    )


def get(conn: Connection, poll_id: int, *, scope: Scope | None = None) -> Poll:
    query = _select().where(polls.c.id == poll_id)
    if scope is not None:
        query = query.where(_in_scope(scope))
    rows = conn.execute(query).all()
    if not rows:
        raise NotFound("poll", str(poll_id))
    return _load(conn, rows)[0]


def in_scope(conn: Connection, scope: Scope, limit: int = 200) -> list[Poll]:
    """Polls staff of `scope` manage, newest first."""
    rows = conn.execute(
        _select()
        .where(_in_scope(scope))
        .order_by(polls.c.opens_at.desc(), polls.c.id.desc())
        .limit(limit)
    ).all()
    return _load(conn, rows)


def for_household(conn: Connection, household: str, now: datetime) -> list[Poll]:
    """Polls a household may see: open ones of its village and town, then those that
    closed in the last `SHOWN_AFTER_CLOSE` (for their results)."""
    home = households.get(conn, household)
    town = conn.scalar(select(villages.c.town_id).where(villages.c.id == home.village))
    rows = conn.execute(
        _select()
        .where(
            or_(
                polls.c.village_id == home.village,
                (polls.c.village_id.is_(None)) & (polls.c.town_id == town),
            ),
            polls.c.opens_at <= now,
            polls.c.closes_at > now - SHOWN_AFTER_CLOSE,
        )
        .order_by(polls.c.closes_at, polls.c.id)
    ).all()
    found = _load(conn, rows)
    found = [p for p in found if p.ends_at() > now - SHOWN_AFTER_CLOSE]
    return sorted(found, key=lambda p: (p.status(now) != "open", p.ends_at()))


def for_household_one(conn: Connection, poll_id: int, household: str, now: datetime) -> Poll:
    """One poll the household may see; any other is not found."""
    for poll in for_household(conn, household, now):
        if poll.id == poll_id:
            return poll
    raise NotFound("poll", str(poll_id))


def ballot(key: bytes, poll_id: int, household: str) -> str:
    """The ballot of a household in a poll whose votes may change (recomputable only
    with the installation's secret key)."""
    return derive(key, "ballot", str(poll_id), household, length=43)


def checked_choices(poll: Poll, choices: Sequence[int]) -> list[int]:
    """The chosen option ids, checked: each an option of this poll, none twice, and
    for each question at least one and at most its `max_choices`."""
    by_option = poll.option_ids()
    if len(set(choices)) != len(choices):
        raise InvalidInput("choices", "an option is chosen twice")
    unknown = [c for c in choices if c not in by_option]
    if unknown:
        raise InvalidInput("choices", "not an option of this poll")
    per_question = Counter(by_option[c].id for c in choices)
    for question in poll.questions:
        n = per_question.get(question.id, 0)
        if n < 1:
            raise InvalidInput("choices", f"question {question.id} is not answered")
        if n > question.max_choices:
            raise InvalidInput("choices", f"question {question.id} allows {question.max_choices}")
    return sorted(choices)


def _lock(conn: Connection, poll_id: int) -> None:
    """Take the poll's row (PostgreSQL): its votes, close and edits one at a time, so a
    vote never lands after the close nor beside an edit, and ballots mix safely."""
    conn.execute(select(polls.c.id).where(polls.c.id == poll_id).with_for_update())


def vote(
    conn: Connection, poll_id: int, household: str, choices: Sequence[int], *,
    channel: Channel, key: bytes, now: datetime | None = None, by: str = "",
    scope: Scope | None = None,
) -> bool:  # fmt: skip
    """Record the household's vote; True when it replaced an earlier one. `now` is
    taken once the poll is locked unless given (tests).

    From the TV the household must be one the poll is for; on paper (`scope`: the
    staff member's) the household must also lie in the staff's scope, and a household
    already on the roll is refused (the paper does not overrule the household)."""
    _lock(conn, poll_id)
    now = now or utcnow()
    home = households.find(conn, household)
    poll = get(conn, poll_id, scope=scope)
    town = None
    if home is not None:
        town = conn.scalar(select(villages.c.town_id).where(villages.c.id == home.village))
    if scope is not None and (home is None or not scope.covers(home.village, town)):
        raise NotFound("household", household)
    if home is None or town is None or not poll.covers(home.village, town):
        # A household outside the poll: to it, the poll does not exist.
        raise NotFound("poll", str(poll_id)) if scope is None else NotFound("household", household)
    if poll.status(now) != "open":
        raise PollClosed("this poll is not open")
    chosen = checked_choices(poll, choices)
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    row = {"poll_id": poll_id, "household_id": household, "channel": channel, "recorded_by": by}
    insert = dialect.insert(poll_voters).values(row)
    if not poll.lock_votes and channel == "tv":
        insert = insert.on_conflict_do_update(
            index_elements=["poll_id", "household_id"],
            # A household that answered on paper and changes it on the TV took part by TV.
            set_={"changes": poll_voters.c.changes + 1, "channel": "tv", "recorded_by": ""},
        )
    else:
        insert = insert.on_conflict_do_nothing(index_elements=["poll_id", "household_id"])
    changes = conn.execute(insert.returning(poll_voters.c.changes)).scalar()
    if changes is None:  # nothing inserted: already on the roll
        raise AlreadyVoted("this household has already voted")
    if poll.lock_votes:
        ballot_id = secrets.token_hex(32)
    else:
        ballot_id = ballot(key, poll_id, household)
        gone = conn.execute(
            delete(poll_answers).where(
                poll_answers.c.poll_id == poll_id, poll_answers.c.ballot == ballot_id
            )
        )
        if changes and not gone.rowcount:
            # On the roll but no ballot under this key: the installation's key changed.
            # Counting the new answer would count this household twice.
            raise Conflict("the earlier answer cannot be found: the vote cannot change now")
    _cast(conn, poll_id, ballot_id, chosen)
    return bool(changes)


def _cast(conn: Connection, poll_id: int, ballot_id: str, chosen: Sequence[int]) -> None:
    """Put the ballot in the box with up to `MIX` earlier ballots taken out and put back
    with it, all rows in random order: the rows written with a vote (on PostgreSQL they
    share its transaction id, and the heap keeps their order) are a crowd of ballots,
    not this household's answer."""
    others = list(
        conn.scalars(
            select(poll_answers.c.ballot)
            .where(poll_answers.c.poll_id == poll_id, poll_answers.c.ballot != ballot_id)
            .group_by(poll_answers.c.ballot)
            .order_by(func.random())
            .limit(MIX)
        )
    )
    rows = [{"poll_id": poll_id, "ballot": ballot_id, "option_id": c} for c in chosen]
    if others:
        taken = and_(poll_answers.c.poll_id == poll_id, poll_answers.c.ballot.in_(others))
        rows += [
            {"poll_id": poll_id, "ballot": r.ballot, "option_id": r.option_id}
            for r in conn.execute(
                select(poll_answers.c.ballot, poll_answers.c.option_id).where(taken)
            )
        ]
        conn.execute(delete(poll_answers).where(taken))
    _SHUFFLE.shuffle(rows)
    conn.execute(poll_answers.insert(), rows)


def has_voted(conn: Connection, poll_id: int, household: str) -> bool:
    found = conn.scalar(
        select(poll_voters.c.channel).where(
            poll_voters.c.poll_id == poll_id, poll_voters.c.household_id == household
        )
    )
    return found is not None


def voted_polls(conn: Connection, household: str, poll_ids: Sequence[int]) -> set[int]:
    return set(
        conn.scalars(
            select(poll_voters.c.poll_id).where(
                poll_voters.c.household_id == household, poll_voters.c.poll_id.in_(list(poll_ids))
            )
        )
    )


def my_choices(conn: Connection, poll: Poll, household: str, key: bytes) -> frozenset[int]:
    """What the household chose, where the poll lets it change its vote (and so can
    find its ballot); empty otherwise."""
    if poll.lock_votes:
        return frozenset()
    return frozenset(
        conn.scalars(
            select(poll_answers.c.option_id).where(
                poll_answers.c.poll_id == poll.id,
                poll_answers.c.ballot == ballot(key, poll.id, household),
            )
        )
    )


def tally(conn: Connection, poll_id: int) -> Tally:
    counts = {
        row.option_id: int(row.n)
        for row in conn.execute(
            select(poll_answers.c.option_id, func.count().label("n"))
            .where(poll_answers.c.poll_id == poll_id)
            .group_by(poll_answers.c.option_id)
        )
    }
    by_channel = {
        row.channel: int(row.n)
        for row in conn.execute(
            select(poll_voters.c.channel, func.count().label("n"))
            .where(poll_voters.c.poll_id == poll_id)
            .group_by(poll_voters.c.channel)
        )
    }
    return Tally(counts, sum(by_channel.values()), by_channel)


def turnout(conn: Connection, poll_ids: Sequence[int]) -> dict[int, int]:
    """Households on the roll of each poll (for lists; one query for all)."""
    rows = conn.execute(
        select(poll_voters.c.poll_id, func.count().label("n"))
        .where(poll_voters.c.poll_id.in_(list(poll_ids)))
        .group_by(poll_voters.c.poll_id)
    )
    return {row.poll_id: int(row.n) for row in rows}


def results_csv(poll: Poll, counted: Tally) -> str:
    """Question, option, votes; then the roll by channel (never who voted what)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["poll", "question", "option", "votes"])
    for question in poll.questions:
        for option in question.options:
            writer.writerow(
                [
                    poll.id,
                    csv_text(question.text),
                    csv_text(option.text),
                    counted.counts.get(option.id, 0),
                ]
            )
    writer.writerow([])
    writer.writerow(["poll", "channel", "households", ""])
    for channel in get_args(Channel):
        writer.writerow([poll.id, channel, counted.by_channel.get(channel, 0), ""])
    return out.getvalue()
