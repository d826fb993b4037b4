"""What staff type on the family lawyer's console pages, read one way: the week and the
day (county time), a slot's start, a lawyer's details, weekly plan and absences; and
what went wrong, as a `Problem` the templates say in the staff's language."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from xueliang import bookings, lawyers, validation
from xueliang.errors import InvalidInput
from xueliang.geography import LOCAL_TIME

NUMBERS = ("slot_minutes", "lead_minutes", "window_days", "cancel_cutoff_minutes")
TEXTS = ("id", "name", "firm", "phone", "practice")
FORM_FIELDS = frozenset({*TEXTS, *NUMBERS, "villages", "active"})
MAX_PLAN_TEXT = 200
_PERIOD = re.compile(r"(\d{1,2}):(\d{2})\s*[-–—~～至到]\s*(\d{1,2}):(\d{2})")
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})")


@dataclass(frozen=True, slots=True)
class Problem:
    """What went wrong, as a code the templates say in the staff's language; `detail`
    carries the domain's own words where there is nothing better to say."""

    code: str
    detail: str = ""


def refusal(e: Exception, too_late: str) -> Problem:
    """A refused booking change as the staff read it; `too_late` is the code for a
    booking whose time does not allow the change."""
    if isinstance(e, bookings.SlotTaken):
        return Problem("taken")
    if isinstance(e, bookings.TooLate):
        return Problem(too_late)
    if isinstance(e, bookings.TooMany):
        return Problem("too_many", str(bookings.MAX_UPCOMING))
    return Problem("invalid" if isinstance(e, InvalidInput) else "conflict", str(e))


def refusal_status(e: Exception) -> int:
    """400 for what was typed wrong, 409 for what the bookings do not allow."""
    return 400 if isinstance(e, InvalidInput) else 409


# --- weeks, days and moments ----------------------------------------------------------


def monday_of(text: str | None) -> date:
    """The Monday of the week `text` (YYYY-MM-DD, local) falls in; this week without it."""
    if not text:
        today = datetime.now(LOCAL_TIME).date()
        return today - timedelta(days=today.weekday())
    return (day := read_day(text, "week")) - timedelta(days=day.weekday())


def read_day(text: str, field: str) -> date:
    """A day typed as YYYY-MM-DD; InvalidInput on `field` otherwise."""
    text = text.strip()
    try:
        day = datetime.strptime(text, "%Y-%m-%d").date() if len(text) <= 10 else None
    except ValueError:
        day = None
    if day is None:
        raise InvalidInput(field, "must be a date like 2026-11-30")
    if not 2000 <= day.year <= 2100:
        raise InvalidInput(field, "must be a date between 2000 and 2100")
    return day


def local_span(first: date, days: int) -> tuple[datetime, datetime]:
    """From local midnight of `first` to local midnight `days` later, in UTC."""
    start = datetime.combine(first, time(), LOCAL_TIME)
    end = datetime.combine(first + timedelta(days=days), time(), LOCAL_TIME)
    return start.astimezone(UTC), end.astimezone(UTC)


def slot_start(text: str) -> datetime:
    """A slot's start as the form sends it (ISO 8601 with its offset), in UTC."""
    try:
        found = datetime.fromisoformat(text.strip()[:40])
    except ValueError:
        raise InvalidInput("slot", "must be a date and time") from None
    if found.tzinfo is None or not 2000 <= found.year <= 2100:
        raise InvalidInput("slot", "must be a date and time with its offset")
    return found.astimezone(UTC)


# --- the weekly plan ------------------------------------------------------------------


def duty_summary(lawyer: lawyers.Lawyer) -> list[tuple[int, int, str]]:
    """(first weekday, last weekday, periods) with neighbouring days of the same hours
    joined: Monday to Friday 09:00-12:00, 14:00-17:00."""
    runs: list[tuple[int, int, str]] = []
    for day in lawyer.duty_days:
        text = plan_text(lawyer.plan, day)
        if runs and runs[-1][1] == day - 1 and runs[-1][2] == text:
            runs[-1] = (runs[-1][0], day, text)
        else:
            runs.append((day, day, text))
    return runs


def plan_text(plan: tuple[lawyers.Period, ...], weekday: int) -> str:
    periods = sorted((p for p in plan if p.weekday == weekday), key=lambda p: p.start)
    return ", ".join(f"{p.start}-{p.end}" for p in periods)


def parse_day(weekday: int, text: str, village: str | None) -> list[dict[str, Any]]:
    """One weekday's periods as typed (`09:00-12:00, 14:00-17:00`); ValueError when the
    text is not of that form (the hours themselves are checked by `lawyers.checked`)."""
    if len(text) > MAX_PLAN_TEXT:
        raise ValueError(text)
    periods = []
    for part in re.split(r"[,，;；、]", text):
        if not part.strip():
            continue
        found = _PERIOD.fullmatch(part.strip())
        if found is None:
            raise ValueError(part)
        h1, m1, h2, m2 = found.groups()
        periods.append({"weekday": weekday, "start": f"{int(h1):02d}:{m1}",
                        "end": f"{int(h2):02d}:{m2}", "village": village})  # fmt: skip
    return periods


# --- the edit form --------------------------------------------------------------------


def values_of(lawyer: lawyers.Lawyer | None) -> dict[str, Any]:
    """The edit form's values for a lawyer (the defaults for a new one)."""
    if lawyer is None:
        defaults = {n: str(lawyers.LawyerInput.model_fields[n].default) for n in NUMBERS}
        return {**dict.fromkeys(TEXTS, ""), **defaults, "villages": [], "active": True,
                "plan": [("", "")] * 7}  # fmt: skip
    return {
        **{n: str(getattr(lawyer, n)) for n in (*TEXTS, *NUMBERS)},
        "villages": list(lawyer.villages), "active": lawyer.active,
        "plan": [(plan_text(lawyer.plan, d), next((p.village or "" for p in lawyer.plan
                                                   if p.weekday == d), "")) for d in range(7)],
    }  # fmt: skip


def values_from(form: dict[str, str]) -> dict[str, Any]:
    """The edit form's values as posted, kept whole to show them again."""
    return {
        **{n: form.get(n, "") for n in (*TEXTS, *NUMBERS)},
        "villages": sorted(k.removeprefix("village_") for k in form if k.startswith("village_")),
        "active": "active" in form,
        "plan": [(form.get(f"plan_{d}", ""), form.get(f"plan_{d}_village", "")) for d in range(7)],
    }


def lawyer_data(
    values: dict[str, Any], ours: set[str]
) -> tuple[dict[str, Any], dict[str, Problem]]:
    """The values as `lawyers.checked` wants them, and what is wrong with the form
    itself (numbers, plan text, villages outside the editor's area `ours`)."""
    errors: dict[str, Problem] = {}
    data: dict[str, Any] = {n: values[n] for n in TEXTS}
    data["id"] = data["id"].strip()
    data.update(villages=values["villages"], active=values["active"])
    if data["id"] == "new":  # the path of the form for a new lawyer
        errors["id"] = Problem("id_taken")
    for field in NUMBERS:
        number = validation.number(values[field].strip(), 5)
        if number is None:
            errors[field] = Problem("number")
        data[field] = number
    if any(v not in ours for v in values["villages"]):
        errors["villages"] = Problem("outside")
    data["plan"] = []
    for day, (text, village) in enumerate(values["plan"]):
        try:
            data["plan"] += parse_day(day, text, village or None)
        except ValueError:
            errors[f"plan_{day}"] = Problem("plan")
    return data, errors


def field_of(e: InvalidInput, plan: list[dict[str, Any]]) -> str:
    """Where on the form an error of `lawyers.checked` belongs."""
    head, _, rest = e.field.partition(".")
    index = rest.partition(".")[0]
    if head == "plan" and index.isdigit() and int(index) < len(plan):
        return f"plan_{plan[int(index)]['weekday']}"
    if weekday := re.search(r"weekday (\d)", e.reason):
        return f"plan_{weekday.group(1)}"
    return head if head in FORM_FIELDS else "lawyer"


def absence_input(typed: dict[str, str]) -> tuple[date, tuple[int, int] | None]:
    """The day, and the local span (minutes after midnight) or None for the whole day."""
    day = read_day(typed["day"], "day")
    start, end = typed["from"].strip(), typed["to"].strip()
    if not start and not end:
        return day, None
    if not (_CLOCK.fullmatch(start) and _CLOCK.fullmatch(end)):
        raise InvalidInput("span", "give both times, like 09:00 and 12:00, or neither")
    return day, (lawyers.minutes(start), lawyers.minutes(end))
