"""Opinion polls on the TV: the open polls of my village and town, one question per
screen, options chosen with arrows and OK, a confirmation, "you have voted", and the
results as big bars when they may be shown.

Choices travel sealed in the link (`?d=…`, see `Draft`), so every step is a plain link
and the form posted at the end works without JavaScript; nothing is stored before OK."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from aiohttp import web
from sqlalchemy import Connection

from stb_portal.tv import session as tv_session
from stb_portal.tv.law_views import LIST_SIZE
from stb_portal.tv.render import by_path_id, page, preferences, screen_of
from xueliang import polls, validation
from xueliang.errors import Conflict, InvalidCredentials, InvalidInput
from xueliang.pairing import Session
from xueliang.polls import Poll
from xueliang.signing import seal, unseal
from xueliang.storage.types import utcnow
from xueliang.web import DATABASE, SECRET_KEY

MAX_PICKS = polls.MAX_QUESTIONS * polls.MAX_OPTIONS
DRAFT = "poll-draft"


def picked(text: str) -> list[int]:
    """Option ids from `12.15.22`; anything malformed is dropped (links are ours)."""
    found: list[int] = []
    for part in text.split(".")[:MAX_PICKS]:
        number = validation.row_id(part)
        if number is not None and number not in found:
            found.append(number)
    return found


def _joined(ids: set[int] | frozenset[int]) -> str:
    return ".".join(str(i) for i in sorted(ids))


async def index(request: web.Request) -> web.Response:
    session = await tv_session.required(request)
    found, voted = await request.app[DATABASE].run_read(
        partial(_index, household=session.household)
    )
    shown, number, pages = screen_of(request, found, LIST_SIZE[preferences(request)["simple"]])
    return page(
        request, "tv/polls.html", session=session, polls=shown, voted=voted, now=utcnow(),
        number=number, pages=pages,
    )  # fmt: skip


def _index(conn: Connection, household: str) -> tuple[list[Poll], set[int]]:
    found = polls.for_household(conn, household, utcnow())
    return found, polls.voted_polls(conn, household, [p.id for p in found])


async def _poll(request: web.Request, session: Session) -> Poll | None:
    db = request.app[DATABASE]
    return await by_path_id(
        request,
        lambda ident: db.run_read(
            partial(polls.for_household_one, poll_id=ident, household=session.household,
                    now=utcnow())
        ),
    )  # fmt: skip


async def show(request: web.Request) -> web.Response:
    """A question to answer, or the household's vote and the results."""
    session = await tv_session.required(request)
    poll = await _poll(request, session)
    if poll is None:
        return page(request, "tv/not_found.html", session=session, status=404)
    now = utcnow()
    voted, mine, counted = await request.app[DATABASE].run_read(
        partial(_standing, poll=poll, household=session.household, key=request.app[SECRET_KEY])
    )
    changing = request.query.get("change") == "1" and not poll.lock_votes
    if poll.status(now) == "open" and (not voted or changing):
        return _question(request, session, poll, mine if changing else frozenset())
    visible = counted if poll.results_visible(now, counted.voters) else None
    return page(
        request, "tv/poll.html", session=session, poll=poll, state=poll.status(now), voted=voted,
        mine=mine, counted=visible, just_voted=request.query.get("voted") == "1",
        live_from=polls.LIVE_MIN_VOTERS,
        shares=_shares(poll, visible) if visible else {},
        shown=min(validation.number(request.query.get("r", "0"), 2) or 0, len(poll.questions) - 1),
    )  # fmt: skip


def _standing(
    conn: Connection, poll: Poll, household: str, key: bytes
) -> tuple[bool, frozenset[int], polls.Tally]:
    """Has the household voted, what it chose (where it can see that), and the tally."""
    return (
        polls.has_voted(conn, poll.id, household),
        polls.my_choices(conn, poll, household, key),
        polls.tally(conn, poll.id),
    )


def _shares(poll: Poll, counted: polls.Tally) -> dict[int, int]:
    """Each option's share of the households that took part, in whole percent (as the
    console shows it; with multiple choice the shares of a question add up to more)."""
    total = counted.voters  # every household answers every question
    return {
        option.id: round(100 * counted.counts.get(option.id, 0) / total) if total else 0
        for question in poll.questions
        for option in question.options
    }


@dataclass(frozen=True, slots=True)
class Draft:
    """Where a household is in a poll before OK: the question on screen, the option to
    focus, the choices so far. It travels sealed in the links (`?d=…`): no history,
    proxy or access log can read a household's choices from a URL."""

    question: int = 0
    focus: int | None = None
    chosen: frozenset[int] = frozenset()


def _context(session: Session, poll: Poll) -> tuple[str, str]:
    return (session.household, str(poll.id))


def _sealed(request: web.Request, session: Session, poll: Poll, draft: Draft) -> str:
    plain = f"{draft.question}:{draft.focus or ''}:{_joined(draft.chosen)}"
    return seal(request.app[SECRET_KEY], DRAFT, plain, _context(session, poll))


def _link(request: web.Request, session: Session, poll: Poll, path: str, draft: Draft) -> str:
    """A step of the poll (`path` below it) carrying `draft`, still changing a vote if
    this page is."""
    change = "&change=1" if request.query.get("change") == "1" else ""
    return f"/tv/polls/{poll.id}{path}?d={_sealed(request, session, poll, draft)}{change}"


def _draft(request: web.Request, session: Session, poll: Poll, start: frozenset[int]) -> Draft:
    """The draft in the link, or a fresh one starting from `start` (a damaged or
    another household's draft starts afresh too)."""
    token = request.query.get("d")
    if token is None:
        return Draft(chosen=start)
    try:
        plain = unseal(request.app[SECRET_KEY], DRAFT, token, _context(session, poll))
    except InvalidCredentials:
        return Draft(chosen=start)
    question, focus, chosen = plain.split(":")  # sealed by us: always three parts
    by_option = poll.option_ids()
    return Draft(
        question=min(validation.number(question, 2) or 0, len(poll.questions) - 1),
        focus=validation.row_id(focus),
        chosen=frozenset(i for i in picked(chosen) if i in by_option),
    )


def _question(
    request: web.Request, session: Session, poll: Poll, start: frozenset[int]
) -> web.Response:
    draft = _draft(request, session, poll, start)
    number, chosen = draft.question, set(draft.chosen)
    question = poll.questions[number]
    here = {o.id for o in question.options}

    def link(path: str, then: Draft) -> str:
        return _link(request, session, poll, path, then)

    def after(selection: set[int]) -> str:
        """Where this question leads once answered: the next one, or the confirmation."""
        if number + 1 < len(poll.questions):
            return link("", Draft(number + 1, None, frozenset(selection)))
        return link("/confirm", Draft(number, None, frozenset(selection)))

    links: dict[int, str] = {}
    for option in question.options:
        if question.max_choices == 1:
            links[option.id] = after((chosen - here) | {option.id})
        else:
            toggled = chosen ^ {option.id}
            if len(toggled & here) > question.max_choices:
                toggled = chosen  # full: OK on another option changes nothing
            links[option.id] = link("", Draft(number, option.id, frozenset(toggled)))
    focus = draft.focus
    if focus not in here:
        focus = next((o.id for o in question.options if o.id in chosen), question.options[0].id)
    back = link("", Draft(number - 1, None, frozenset(chosen))) if number > 0 else "/tv/polls"
    return page(
        request, "tv/poll_question.html", session=session, poll=poll, question=question,
        number=number, chosen=chosen, links=links, focus=focus,
        next=after(chosen) if chosen & here else None,
        full=len(chosen & here) >= question.max_choices > 1, back=back,
    )  # fmt: skip


async def confirm(request: web.Request) -> web.Response:
    session = await tv_session.required(request)
    poll = await _poll(request, session)
    if poll is None:
        return page(request, "tv/not_found.html", session=session, status=404)
    draft = _draft(request, session, poll, frozenset())
    try:
        chosen = polls.checked_choices(poll, sorted(draft.chosen))
    except InvalidInput:
        raise web.HTTPSeeOther(f"/tv/polls/{poll.id}") from None
    answers = [
        (question, [o for o in question.options if o.id in chosen]) for question in poll.questions
    ]
    back = _link(
        request, session, poll, "", Draft(len(poll.questions) - 1, None, frozenset(chosen))
    )
    return page(
        request, "tv/poll_confirm.html", session=session, poll=poll, answers=answers,
        a=_joined(set(chosen)), back=back,
    )  # fmt: skip


async def vote(request: web.Request) -> web.Response:
    session = await tv_session.required(request)
    form = await tv_session.check_csrf(request, session)
    poll = await _poll(request, session)
    if poll is None:
        return page(request, "tv/not_found.html", session=session, status=404)
    try:
        await request.app[DATABASE].run_write(
            partial(
                polls.vote,
                poll_id=poll.id,
                household=session.household,
                choices=picked(form.get("a", "")),
                channel="tv",
                key=request.app[SECRET_KEY],
            )
        )
    except InvalidInput:
        raise web.HTTPSeeOther(f"/tv/polls/{poll.id}") from None
    except Conflict:  # closed meanwhile, already voted, or the vote cannot change
        raise web.HTTPSeeOther(f"/tv/polls/{poll.id}") from None
    raise web.HTTPSeeOther(f"/tv/polls/{poll.id}?voted=1")


def setup(app: web.Application) -> None:
    add = app.router.add_route
    add("GET", "/tv/polls", index, name="tv_polls")
    add("GET", "/tv/polls/{id}", show, name="tv_poll")
    add("GET", "/tv/polls/{id}/confirm", confirm, name="tv_poll_confirm")
    add("POST", "/tv/polls/{id}/vote", vote, name="tv_poll_vote")
