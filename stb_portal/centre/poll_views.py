"""The console's opinion polls (意见征询): the list, writing and editing a poll, one
poll with its turnout and (once visible) its results, closing it, entering paper
votes, and the results as CSV. Staff see results only when households may: nobody
steers a poll by watching it. Who voted what is never shown, exported or audited."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from typing import TypeVar
from urllib.parse import quote

from aiohttp import web
from markupsafe import Markup
from sqlalchemy import Connection, select

from stb_portal import auth, i18n
from stb_portal.centre import charts
from stb_portal.centre.render import language, page
from stb_portal.keys import TRANSLATIONS
from xueliang import audit, geography, polls, validation
from xueliang.errors import Conflict, InvalidInput, NotFound
from xueliang.geography import LOCAL_TIME, Scope
from xueliang.staff_sessions import StaffSession
from xueliang.storage.tables import towns
from xueliang.storage.types import utcnow
from xueliang.web import DATABASE, SECRET_KEY

T = TypeVar("T")
# What `datetime-local` inputs send (seconds only when a step asks for them).
_LOCAL_INPUT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2})?")
_CHOICE = re.compile(r"q[0-9]{1,15}")  # paper vote: one field per question
_NOT_A_MOMENT = "not a date and time"
_NOT_YOURS = "not in your area"


@dataclass
class QuestionForm:
    text: str = ""
    max_choices: str = "1"
    options: str = ""  # one per line

    def blank(self) -> bool:
        return not self.text.strip() and not self.options.strip()


@dataclass
class PollForm:
    """The poll form as typed, so that a refused form comes back as it was sent."""

    title: str = ""
    description: str = ""
    place: str = ""  # "village:<id>" or "town:<id>"
    opens_at: str = ""  # datetime-local, county time
    closes_at: str = ""
    results: str = "after_close"
    lock_votes: bool = False
    questions: list[QuestionForm] = field(default_factory=list)

    def filled(self) -> list[int]:
        """Positions of the question blocks that hold anything (blank ones are unused)."""
        return [n for n, q in enumerate(self.questions) if not q.blank()]


@dataclass(frozen=True, slots=True)
class Places:
    """What a poll of this staff member may be for: (value, name) pairs."""

    villages: list[tuple[str, str]]
    towns: list[tuple[str, str]]

    def values(self) -> set[str]:
        return {value for value, _ in self.villages + self.towns}


def _places(conn: Connection, scope: Scope) -> Places:
    names = geography.village_names(conn, scope)
    villages = [(f"village:{id}", name) for id, name in sorted(names.items(), key=lambda v: v[1])]
    if scope.level == "village":
        return Places(villages, [])
    query = select(towns.c.id, towns.c.name).order_by(towns.c.name)
    if scope.level == "town":
        query = query.where(towns.c.id == scope.id)
    return Places(villages, [(f"town:{row.id}", row.name) for row in conn.execute(query)])


# --- the form -------------------------------------------------------------------------


def _local(moment: datetime) -> str:
    return moment.astimezone(LOCAL_TIME).strftime("%Y-%m-%d %H:%M")


def _input_time(moment: datetime) -> str:
    return moment.astimezone(LOCAL_TIME).strftime("%Y-%m-%dT%H:%M")


def _padded(questions: list[QuestionForm]) -> list[QuestionForm]:
    return questions + [QuestionForm() for _ in range(polls.MAX_QUESTIONS - len(questions))]


def _blank_form(places: Places, now: datetime) -> PollForm:
    """A new poll: from the next full hour, for a week."""
    opens = now.astimezone(LOCAL_TIME).replace(minute=0, second=0, microsecond=0)
    opens += timedelta(hours=1)
    first = (places.villages + places.towns)[:1]
    return PollForm(
        place=first[0][0] if first else "", opens_at=_input_time(opens),
        closes_at=_input_time(opens + timedelta(days=7)), questions=_padded([]),
    )  # fmt: skip


def _form_of(poll: polls.Poll) -> PollForm:
    return PollForm(
        title=poll.title,
        description=poll.description,
        place=f"village:{poll.village}" if poll.village else f"town:{poll.town}",
        opens_at=_input_time(poll.opens_at),
        closes_at=_input_time(poll.closes_at),
        results=poll.results,
        lock_votes=poll.lock_votes,
        questions=_padded(
            [
                QuestionForm(q.text, str(q.max_choices), "\n".join(o.text for o in q.options))
                for q in poll.questions
            ]
        ),
    )


def _form_from(posted: Mapping[str, str]) -> PollForm:
    return PollForm(
        title=posted.get("title", ""),
        description=posted.get("description", ""),
        place=posted.get("place", ""),
        opens_at=posted.get("opens_at", ""),
        closes_at=posted.get("closes_at", ""),
        results=posted.get("results", ""),
        lock_votes="lock_votes" in posted,
        questions=[
            QuestionForm(
                posted.get(f"q{n}_text", ""),
                posted.get(f"q{n}_max", "1"),
                posted.get(f"q{n}_options", ""),
            )
            for n in range(polls.MAX_QUESTIONS)
        ],
    )


def _checked(form: PollForm, places: Places) -> polls.PollInput:
    """The form as `polls.checked` reads it: trimmed, blank question blocks left out,
    one option per line, times in the county's clock."""
    if form.place not in places.values():
        raise InvalidInput("place", _NOT_YOURS)
    level, _, place = form.place.partition(":")
    questions = [form.questions[n] for n in form.filled()]
    return polls.checked(
        {
            "title": form.title.strip(),
            # A textarea for room to type; the poll keeps one paragraph.
            "description": re.sub(r"\s*[\r\n]+\s*", " ", form.description).strip(),
            level: place,
            "opens_at": _moment(form.opens_at, "opens_at"),
            "closes_at": _moment(form.closes_at, "closes_at"),
            "results": form.results,
            "lock_votes": form.lock_votes,
            "questions": [
                {
                    "text": q.text.strip(),
                    "max_choices": q.max_choices.strip() or "1",
                    "options": [line.strip() for line in q.options.splitlines() if line.strip()],
                }
                for q in questions
            ],
        }
    )


def _moment(text: str, name: str) -> datetime:
    """A `datetime-local` value, read as the county's local time."""
    try:
        if not _LOCAL_INPUT.fullmatch(text.strip()):
            raise ValueError(text)
        moment = datetime.fromisoformat(text.strip())  # 30 February: ValueError
    except ValueError:
        raise InvalidInput(name, _NOT_A_MOMENT) from None
    if not 2000 <= moment.year <= 2100:
        raise InvalidInput(name, _NOT_A_MOMENT)
    return moment.replace(tzinfo=LOCAL_TIME)


def _problem(error: InvalidInput, form: PollForm) -> tuple[str, str]:
    """The error in the reader's language, and the form block to mark."""
    _ = i18n.gettext
    parts = error.field.split(".")
    label, block = "", parts[0]
    if parts[0] == "questions" and len(parts) > 1 and parts[1].isdigit():
        filled = form.filled()
        index = int(parts[1])
        position = filled[index] if index < len(filled) else index
        label = {
            "text": _("Question %(n)s: text"),
            "options": _("Question %(n)s: options"),
            "max_choices": _("Question %(n)s: answers per household"),
        }.get(parts[2] if len(parts) > 2 else "", _("Question %(n)s")) % {"n": position + 1}
        block = f"q{position}.{parts[2]}" if len(parts) > 2 else f"q{position}"
    else:
        label = {
            "title": _("Poll title"), "description": _("Poll description"), "place": _("Poll area"),
            "village": _("Poll area"), "town": _("Poll area"), "opens_at": _("Poll opens"),
            "closes_at": _("Poll closes"), "results": _("Results"), "questions": _("Questions"),
        }.get(parts[0], "")  # fmt: skip
    reason = _reason(error.reason)
    text = _("%(field)s: %(reason)s") % {"field": label, "reason": reason} if label else reason
    return text[:1].upper() + text[1:], block


def _reason(reason: str) -> str:
    """A reason given by `polls.checked` (pydantic's words, or the model's own), or by
    this form, in the reader's language; an unknown one as it is."""
    _ = i18n.gettext
    reason = reason.removeprefix("Value error, ")
    fixed = {
        "closes_at must be after opens_at": _("the poll must close after it opens"),
        "a poll runs at most a year": _("a poll runs at most a year"),
        "max_choices is more than there are options": _(
            "more answers allowed than there are options"
        ),
        "two options are the same": _("two options are the same"),
        "a poll is for one village or one town": _("choose the village or town it is for"),
        _NOT_YOURS: _("choose a village or town of your area"),
        _NOT_A_MOMENT: _("enter a date and a time"),
        "String should have at least 1 character": _("must not be left empty"),
    }
    if reason in fixed:
        return fixed[reason]
    counted = (
        (r"String should have at most (\d+) characters?", _("no more than %(n)s characters")),
        (r"(?:List|Input) should (?:have|be greater than or equal to) (?:at least )?(\d+)",
         _("no fewer than %(n)s")),
        (r"(?:List|Input) should (?:have|be less than or equal to) (?:at most )?(\d+)",
         _("no more than %(n)s")),
    )  # fmt: skip
    for pattern, text in counted:
        found = re.match(pattern, reason)
        if found:
            return text % {"n": found.group(1)}
    if reason.startswith("String should match pattern"):
        return _("one line of text, without control characters")
    if reason.startswith("Input should be a valid integer"):
        return _("enter a whole number")
    if reason.startswith("Input should be"):
        return _("choose one of the offered values")
    return reason


# --- pages ----------------------------------------------------------------------------


def _speaking(request: web.Request) -> AbstractContextManager[None]:
    return i18n.speaking(request.config_dict[TRANSLATIONS][language(request)])


def _poll_id(request: web.Request) -> int:
    found = validation.number(request.match_info["id"], 15)
    if found is None:
        raise web.HTTPNotFound()
    return found


async def _read(request: web.Request, work: Callable[[Connection], T]) -> T:
    """`work` on the database; a poll outside the staff's scope is not found."""
    try:
        return await request.config_dict[DATABASE].run_read(work)
    except NotFound as e:
        raise web.HTTPNotFound() from e


async def _refused(request: web.Request, entry: audit.Entry, error: Exception) -> None:
    """An attempt that changed nothing, on record (its own transaction)."""
    refused = replace(entry, action=f"{entry.action}.refused"[:32], detail=str(error))
    await audit.record(request.config_dict[DATABASE], refused)


async def list_page(request: web.Request) -> web.Response:
    session = await auth.for_console(request)

    def work(conn: Connection) -> tuple[list[polls.Poll], dict[int, int]]:
        found = polls.in_scope(conn, session.scope)
        return found, polls.turnout(conn, [p.id for p in found])

    found, voters = await _read(request, work)
    return page(request, "centre/polls.html", session=session, polls=found, voters=voters,
                now=utcnow(), local=_local)  # fmt: skip


def _form_page(
    request: web.Request, session: StaffSession, poll: polls.Poll | None, form: PollForm,
    places: Places, *, error: InvalidInput | None = None, locked: bool = False, status: int = 200,
) -> web.Response:  # fmt: skip
    problem, bad = None, ""
    if error is not None:
        with _speaking(request):
            problem, bad = _problem(error, form)
    shown = max([n + 1 for n in form.filled()] + [1])
    return page(request, "centre/poll_edit.html", session=session, poll=poll, form=form,
                places=places, problem=problem, bad=bad, locked=locked, shown=shown,
                max_options=polls.MAX_OPTIONS, status=status)  # fmt: skip


async def new_form(request: web.Request) -> web.Response:
    session = await auth.for_console(request)
    places = await _read(request, partial(_places, scope=session.scope))
    return _form_page(request, session, None, _blank_form(places, utcnow()), places)


async def create(request: web.Request) -> web.Response:
    session = await auth.for_console(request)
    form = _form_from(await auth.checked_form(request, session))
    places = await _read(request, partial(_places, scope=session.scope))
    entry = auth.entry(request, session, "poll.create")
    try:
        data = _checked(form, places)

        def work(conn: Connection) -> int:
            poll_id = polls.create(
                conn, data, scope=session.scope, by=auth.shown_name(session), now=utcnow()
            )
            audit.write(conn, replace(entry, target=str(poll_id), detail=data.title))
            return poll_id

        poll_id = await request.config_dict[DATABASE].run_write(work)
    except InvalidInput as e:
        return _form_page(request, session, None, form, places, error=e, status=400)
    except NotFound as e:  # a place outside the scope: the form never offers one
        await _refused(request, entry, e)
        mistake = InvalidInput("place", _NOT_YOURS)
        return _form_page(request, session, None, form, places, error=mistake, status=400)
    raise web.HTTPSeeOther(f"/centre/polls/{poll_id}")


def _poll_and_tally(conn: Connection, poll_id: int, scope: Scope) -> tuple[polls.Poll, polls.Tally]:
    return polls.get(conn, poll_id, scope=scope), polls.tally(conn, poll_id)


def _to_edit(conn: Connection, poll_id: int, scope: Scope) -> tuple[polls.Poll, int, Places]:
    """The poll, how many have voted (none, or it cannot change) and the places."""
    poll, counted = _poll_and_tally(conn, poll_id, scope)
    return poll, counted.voters, _places(conn, scope)


async def edit_form(request: web.Request) -> web.Response:
    session = await auth.for_console(request)
    poll_id = _poll_id(request)
    poll, voters, places = await _read(
        request, partial(_to_edit, poll_id=poll_id, scope=session.scope)
    )
    return _form_page(request, session, poll, _form_of(poll), places, locked=voters > 0)


async def edit(request: web.Request) -> web.Response:
    session = await auth.for_console(request)
    poll_id = _poll_id(request)
    form = _form_from(await auth.checked_form(request, session))
    poll, _, places = await _read(request, partial(_to_edit, poll_id=poll_id, scope=session.scope))
    entry = auth.entry(request, session, "poll.edit", str(poll_id))
    try:
        data = _checked(form, places)

        def work(conn: Connection) -> None:
            polls.update_poll(conn, poll_id, data, scope=session.scope, now=utcnow())
            audit.write(conn, replace(entry, detail=data.title))

        await request.config_dict[DATABASE].run_write(work)
    except InvalidInput as e:
        return _form_page(request, session, poll, form, places, error=e, status=400)
    except Conflict as e:  # somebody voted: the questions are what they answered
        await _refused(request, entry, e)
        return _form_page(request, session, poll, form, places, locked=True, status=409)
    except NotFound as e:
        await _refused(request, entry, e)
        if e.kind == "poll":
            raise web.HTTPNotFound() from e
        mistake = InvalidInput("place", _NOT_YOURS)
        return _form_page(request, session, poll, form, places, error=mistake, status=400)
    raise web.HTTPSeeOther(f"/centre/polls/{poll_id}")


async def poll_page(request: web.Request) -> web.Response:
    session = await auth.for_console(request)
    recorded = request.query.get("recorded", "")
    try:
        recorded = validation.identifier("recorded", recorded)
    except InvalidInput:
        recorded = ""
    return await _poll_page(request, session, _poll_id(request), recorded=recorded)


async def _poll_page(
    request: web.Request, session: StaffSession, poll_id: int, *, status: int = 200,
    problem: str | None = None, household: str = "", chosen: Sequence[int] = (),
    recorded: str = "",
) -> web.Response:  # fmt: skip
    poll, counted = await _read(
        request, partial(_poll_and_tally, poll_id=poll_id, scope=session.scope)
    )
    now = utcnow()
    state = poll.status(now)
    visible = poll.results_visible(now)
    drawn: list[Markup] = []
    if visible:
        with _speaking(request):
            drawn = _charts(poll, counted)
    # Live results show from the opening; all others from the close.
    results_from = poll.opens_at if poll.results == "live" and state == "upcoming" else None
    return page(
        request, "centre/poll.html", session=session, poll=poll, state=state, visible=visible,
        charts=drawn, voters=counted.voters, by_channel=counted.by_channel,
        results_from=_local(results_from or poll.ends_at()), local=_local, problem=problem,
        household=household, chosen=set(chosen), recorded=recorded, status=status,
    )  # fmt: skip


def _charts(poll: polls.Poll, counted: polls.Tally) -> list[Markup]:
    _ = i18n.gettext
    return [
        charts.share_bars(
            question.text,
            [option.text for option in question.options],
            [float(counted.counts.get(option.id, 0)) for option in question.options],
            counted.voters,
            _("Nobody has voted."),
        )
        for question in poll.questions
    ]


async def close(request: web.Request) -> web.Response:
    session = await auth.for_console(request)
    poll_id = _poll_id(request)
    posted = await auth.checked_form(request, session)
    if posted.get("confirm") != "yes":
        with _speaking(request):
            problem = i18n.gettext("Tick the box to confirm that the poll closes now.")
        return await _poll_page(request, session, poll_id, problem=problem, status=400)
    entry = auth.entry(request, session, "poll.close", str(poll_id))

    def work(conn: Connection) -> None:
        if polls.close(conn, poll_id, scope=session.scope, now=utcnow()):
            audit.write(conn, entry)  # closing twice is no second action

    try:
        await request.config_dict[DATABASE].run_write(work)
    except NotFound as e:
        await _refused(request, entry, e)
        raise web.HTTPNotFound() from e
    raise web.HTTPSeeOther(f"/centre/polls/{poll_id}")


async def paper_vote(request: web.Request) -> web.Response:
    """A household's paper form, typed in by staff: counted against the same roll as
    the TV, so a household votes once whichever way it chooses."""
    session = await auth.for_console(request)
    poll_id = _poll_id(request)
    posted = await auth.checked_form(request, session)
    household = posted.get("household", "").strip()[:64]
    picked = [v for k, v in (await request.post()).items() if _CHOICE.fullmatch(k)]
    chosen = [n for n in (validation.number(v, 15) if isinstance(v, str) else None
                          for v in picked) if n is not None]  # fmt: skip
    # The household is the target; what it chose is never written down here.
    entry = auth.entry(request, session, "poll.paper_vote", household, f"poll {poll_id}")
    try:
        if not household:
            raise InvalidInput("household", "String should have at least 1 character")
        if len(chosen) != len(picked):
            raise InvalidInput("choices", "not an option of this poll")

        def work(conn: Connection) -> None:
            polls.vote(
                conn, poll_id, household, chosen, channel="paper",
                key=request.config_dict[SECRET_KEY], now=utcnow(),
                by=auth.shown_name(session), scope=session.scope,
            )  # fmt: skip
            audit.write(conn, entry)

        await request.config_dict[DATABASE].run_write(work)
    except (NotFound, Conflict, InvalidInput) as e:
        await _refused(request, entry, e)
        if isinstance(e, NotFound) and e.kind == "poll":
            raise web.HTTPNotFound() from e
        status, problem = await _vote_problem(request, e, poll_id, household, session.scope)
        return await _poll_page(request, session, poll_id, status=status, problem=problem,
                                household=household, chosen=chosen)  # fmt: skip
    raise web.HTTPSeeOther(f"/centre/polls/{poll_id}?recorded={quote(household)}")


async def _vote_problem(
    request: web.Request, error: Exception, poll_id: int, household: str, scope: Scope
) -> tuple[int, str]:
    _ = i18n.gettext
    poll = await _read(request, partial(polls.get, poll_id=poll_id, scope=scope))
    with _speaking(request):
        if isinstance(error, NotFound):
            return 404, _(
                "There is no household %(household)s among those this poll is for, in your area."
            ) % {"household": household}
        if isinstance(error, polls.AlreadyVoted):
            return 409, _(
                "Household %(household)s has already voted in this poll, on the TV or on paper."
            ) % {"household": household}
        if isinstance(error, polls.PollClosed):
            return 409, _("This poll is not open: paper votes are entered while it is open.")
        assert isinstance(error, InvalidInput)
        if error.field == "household":
            return 400, _("Enter the household's number.")
        positions = {q.id: n + 1 for n, q in enumerate(poll.questions)}
        found = re.fullmatch(r"question (\d+) (is not answered|allows (\d+))", error.reason)
        if found and int(found.group(1)) in positions:
            n = positions[int(found.group(1))]
            if found.group(3) is None:
                return 400, _("Question %(n)s is not answered.") % {"n": n}
            return 400, _("Question %(n)s allows at most %(max)s answers.") % {
                "n": n, "max": found.group(3),
            }  # fmt: skip
        return 400, _("Choose among the options of this poll.")


async def results_csv(request: web.Request) -> web.Response:
    session = await auth.for_console(request)
    poll_id = _poll_id(request)
    poll, counted = await _read(
        request, partial(_poll_and_tally, poll_id=poll_id, scope=session.scope)
    )
    now = utcnow()
    if not poll.results_visible(now):
        shown_from = poll.opens_at if poll.results == "live" else poll.ends_at()
        with _speaking(request):
            text = i18n.gettext("The results of this poll are not visible before %(time)s.")
        raise web.HTTPConflict(text=text % {"time": _local(shown_from)})
    db = request.config_dict[DATABASE]
    await audit.record(db, auth.entry(request, session, "export.poll_csv", str(poll_id)))
    return web.Response(
        # With a byte-order mark, spreadsheet programs read the Chinese text right.
        body=polls.results_csv(poll, counted).encode("utf-8-sig"),
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="poll-{poll_id}.csv"',
            "Cache-Control": "no-store",
        },
    )


def setup(app: web.Application) -> None:
    """Register the pages."""
    add = app.router.add_route
    add("GET", "/centre/polls", list_page, name="centre_polls")
    add("GET", "/centre/polls/new", new_form, name="centre_poll_new")
    add("POST", "/centre/polls/new", create, name="centre_poll_create")
    add("GET", r"/centre/polls/{id:\d+}", poll_page, name="centre_poll")
    add("GET", r"/centre/polls/{id:\d+}.csv", results_csv, name="centre_poll_csv")
    add("GET", r"/centre/polls/{id:\d+}/edit", edit_form, name="centre_poll_edit_form")
    add("POST", r"/centre/polls/{id:\d+}/edit", edit, name="centre_poll_edit")
    add("POST", r"/centre/polls/{id:\d+}/close", close, name="centre_poll_close")
    add("POST", r"/centre/polls/{id:\d+}/paper", paper_vote, name="centre_poll_paper")
