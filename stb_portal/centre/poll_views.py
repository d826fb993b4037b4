"""The console's opinion polls (意见征询): the list, writing and editing a poll, one
poll with its turnout and (once visible) its results, closing it, entering paper
votes, and the results as CSV. Staff see results only when households may: nobody
steers a poll by watching it. Who voted what is never shown, exported or audited."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import datetime
from functools import partial
from typing import TypeVar
from urllib.parse import quote

from aiohttp import web
from markupsafe import Markup
from sqlalchemy import Connection

from stb_portal import auth, i18n
from stb_portal.centre import charts, poll_form
from stb_portal.centre.poll_form import Places, PollForm
from stb_portal.centre.render import csv_response, language, page, path_id
from stb_portal.keys import TRANSLATIONS
from stb_portal.staff_actions import refused
from xueliang import audit, polls, validation
from xueliang.errors import Conflict, InvalidInput, NotFound
from xueliang.geography import LOCAL_TIME, Scope
from xueliang.staff_sessions import StaffSession
from xueliang.storage.types import utcnow
from xueliang.web import DATABASE, SECRET_KEY

T = TypeVar("T")
_CHOICE = re.compile(r"q[0-9]{1,15}")  # paper vote: one field per question


def _local(moment: datetime) -> str:
    return moment.astimezone(LOCAL_TIME).strftime("%Y-%m-%d %H:%M")


def _speaking(request: web.Request) -> AbstractContextManager[None]:
    return i18n.speaking(request.config_dict[TRANSLATIONS][language(request)])


async def _read(request: web.Request, work: Callable[[Connection], T]) -> T:
    """`work` on the database; a poll outside the staff's scope is not found."""
    try:
        return await request.config_dict[DATABASE].run_read(work)
    except NotFound as e:
        raise web.HTTPNotFound() from e


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
            problem, bad = poll_form.problem(error, form)
    shown = max([n + 1 for n in form.filled()] + [1])
    return page(request, "centre/poll_edit.html", session=session, poll=poll, form=form,
                places=places, problem=problem, bad=bad, locked=locked, shown=shown,
                max_options=polls.MAX_OPTIONS, status=status)  # fmt: skip


async def new_form(request: web.Request) -> web.Response:
    session = await auth.for_console(request)
    places = await _read(request, partial(poll_form.places_for, scope=session.scope))
    return _form_page(request, session, None, poll_form.blank(places, utcnow()), places)


async def create(request: web.Request) -> web.Response:
    session = await auth.for_console(request)
    form = poll_form.from_post(await auth.checked_form(request, session))
    places = await _read(request, partial(poll_form.places_for, scope=session.scope))
    entry = auth.entry(request, session, "poll.create")
    try:
        data = poll_form.checked(form, places)

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
        await refused(request, entry, e)
        mistake = InvalidInput("place", poll_form.NOT_YOURS)
        return _form_page(request, session, None, form, places, error=mistake, status=400)
    raise web.HTTPSeeOther(f"/centre/polls/{poll_id}")


def _poll_and_tally(conn: Connection, poll_id: int, scope: Scope) -> tuple[polls.Poll, polls.Tally]:
    return polls.get(conn, poll_id, scope=scope), polls.tally(conn, poll_id)


def _to_edit(conn: Connection, poll_id: int, scope: Scope) -> tuple[polls.Poll, int, Places]:
    """The poll, how many have voted (none, or it cannot change) and the places."""
    poll, counted = _poll_and_tally(conn, poll_id, scope)
    return poll, counted.voters, poll_form.places_for(conn, scope)


async def edit_form(request: web.Request) -> web.Response:
    session = await auth.for_console(request)
    poll_id = path_id(request)
    poll, voters, places = await _read(
        request, partial(_to_edit, poll_id=poll_id, scope=session.scope)
    )
    return _form_page(request, session, poll, poll_form.of_poll(poll), places, locked=voters > 0)


async def edit(request: web.Request) -> web.Response:
    session = await auth.for_console(request)
    poll_id = path_id(request)
    form = poll_form.from_post(await auth.checked_form(request, session))
    poll, _, places = await _read(request, partial(_to_edit, poll_id=poll_id, scope=session.scope))
    entry = auth.entry(request, session, "poll.edit", str(poll_id))
    try:
        data = poll_form.checked(form, places)

        def work(conn: Connection) -> None:
            polls.update_poll(conn, poll_id, data, scope=session.scope, now=utcnow())
            audit.write(conn, replace(entry, detail=data.title))

        await request.config_dict[DATABASE].run_write(work)
    except InvalidInput as e:
        return _form_page(request, session, poll, form, places, error=e, status=400)
    except Conflict as e:  # somebody voted: the questions are what they answered
        await refused(request, entry, e)
        return _form_page(request, session, poll, form, places, locked=True, status=409)
    except NotFound as e:
        await refused(request, entry, e)
        if e.kind == "poll":
            raise web.HTTPNotFound() from e
        mistake = InvalidInput("place", poll_form.NOT_YOURS)
        return _form_page(request, session, poll, form, places, error=mistake, status=400)
    raise web.HTTPSeeOther(f"/centre/polls/{poll_id}")


async def poll_page(request: web.Request) -> web.Response:
    session = await auth.for_console(request)
    recorded = request.query.get("recorded", "")
    try:
        recorded = validation.identifier("recorded", recorded)
    except InvalidInput:
        recorded = ""
    return await _poll_page(request, session, path_id(request), recorded=recorded)


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
    visible = poll.results_visible(now, counted.voters)
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
        live_from=polls.LIVE_MIN_VOTERS,
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
    poll_id = path_id(request)
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
        await refused(request, entry, e)
        raise web.HTTPNotFound() from e
    raise web.HTTPSeeOther(f"/centre/polls/{poll_id}")


async def paper_vote(request: web.Request) -> web.Response:
    """A household's paper form, typed in by staff: counted against the same roll as
    the TV, so a household votes once whichever way it chooses."""
    session = await auth.for_console(request)
    poll_id = path_id(request)
    posted = await auth.checked_form(request, session)
    household = posted.get("household", "").strip()[:64]
    picked = [v for k, v in (await request.post()).items() if _CHOICE.fullmatch(k)]
    chosen = [n for n in (validation.row_id(v) if isinstance(v, str) else None
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
                key=request.config_dict[SECRET_KEY], by=auth.shown_name(session),
                scope=session.scope,
            )  # fmt: skip
            audit.write(conn, entry)

        await request.config_dict[DATABASE].run_write(work)
    except (NotFound, Conflict, InvalidInput) as e:
        await refused(request, entry, e)
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
    poll_id = path_id(request)
    poll, counted = await _read(
        request, partial(_poll_and_tally, poll_id=poll_id, scope=session.scope)
    )
    now = utcnow()
    if not poll.results_visible(now, counted.voters):
        shown_from = poll.opens_at if poll.results == "live" else poll.ends_at()
        with _speaking(request):
            text = i18n.gettext("The results of this poll are not visible before %(time)s.")
        raise web.HTTPConflict(text=text % {"time": _local(shown_from)})
    db = request.config_dict[DATABASE]
    await audit.record(db, auth.entry(request, session, "export.poll_csv", str(poll_id)))
    return csv_response(polls.results_csv(poll, counted), f"poll-{poll_id}.csv")


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
