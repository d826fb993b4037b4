"""The poll form of the console: what staff type to write or edit a poll, kept as typed
so that a refused form comes back as it was sent; the places a poll may be for; the
form read as `polls.checked` wants it; and what was wrong, in the staff's language."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection, select

from stb_portal import i18n
from xueliang import geography, polls
from xueliang.errors import InvalidInput
from xueliang.geography import LOCAL_TIME, Scope
from xueliang.storage.tables import towns

# What `datetime-local` inputs send (seconds only when a step asks for them).
_LOCAL_INPUT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2})?")
_NOT_A_MOMENT = "not a date and time"
NOT_YOURS = "not in your area"


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


def places_for(conn: Connection, scope: Scope) -> Places:
    """The villages (and for town and county staff, towns) of `scope`, by name."""
    names = geography.village_names(conn, scope)
    villages = [(f"village:{id}", name) for id, name in sorted(names.items(), key=lambda v: v[1])]
    if scope.level == "village":
        return Places(villages, [])
    query = select(towns.c.id, towns.c.name).order_by(towns.c.name)
    if scope.level == "town":
        query = query.where(towns.c.id == scope.id)
    return Places(villages, [(f"town:{row.id}", row.name) for row in conn.execute(query)])


def _input_time(moment: datetime) -> str:
    return moment.astimezone(LOCAL_TIME).strftime("%Y-%m-%dT%H:%M")


def _padded(questions: list[QuestionForm]) -> list[QuestionForm]:
    return questions + [QuestionForm() for _ in range(polls.MAX_QUESTIONS - len(questions))]


def blank(places: Places, now: datetime) -> PollForm:
    """A new poll: from the next full hour, for a week."""
    opens = now.astimezone(LOCAL_TIME).replace(minute=0, second=0, microsecond=0)
    opens += timedelta(hours=1)
    first = (places.villages + places.towns)[:1]
    return PollForm(
        place=first[0][0] if first else "", opens_at=_input_time(opens),
        closes_at=_input_time(opens + timedelta(days=7)), questions=_padded([]),
    )  # fmt: skip


def of_poll(poll: polls.Poll) -> PollForm:
    """The form filled in with `poll`, to edit it."""
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


def from_post(posted: Mapping[str, str]) -> PollForm:
    """The form as posted, every question block kept (blank ones too)."""
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


def checked(form: PollForm, places: Places) -> polls.PollInput:
    """The form as `polls.checked` reads it: trimmed, blank question blocks left out,
    one option per line, times in the county's clock."""
    if form.place not in places.values():
        raise InvalidInput("place", NOT_YOURS)
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


def problem(error: InvalidInput, form: PollForm) -> tuple[str, str]:
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
        NOT_YOURS: _("choose a village or town of your area"),
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
