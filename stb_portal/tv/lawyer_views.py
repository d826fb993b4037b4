"""The family lawyer on the TV: the village's lawyer and the next free slots by day,
a topic from a preset list, a confirmation, "my bookings" with cancel (preset
reasons), and the reminder on the home page on the day. Only links and form posts:
nothing to type, and every step works without JavaScript."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from itertools import groupby

from aiohttp import web
from sqlalchemy import Connection

from stb_portal.tv import session as tv_session
from stb_portal.tv.render import by_path_id, page, preferences, screen_of
from xueliang import audit, bookings, households, lawyers, validation
from xueliang.bookings import Booking
from xueliang.errors import Conflict, InvalidInput, NotFound
from xueliang.lawyers import Lawyer, Slot
from xueliang.pairing import Session
from xueliang.storage.types import utcnow
from xueliang.ttl_cache import MISSING, Missing, TtlCache
from xueliang.web import DATABASE

# Days of slots per screen: fewer, larger buttons in simple mode.
DAYS_PER_SCREEN = {True: 1, False: 2}
# The home page's reminder is at most this many seconds late for bookings made or
# cancelled by another process (this process forgets at once).
TODAY_TTL_S = 30.0
TODAY = web.AppKey("tv_today_bookings", TtlCache[str, Booking | None])


async def today(app: web.Application, household: str) -> Booking | None:
    """The household's booking of today still to come (for the home page's banner)."""
    db = app[DATABASE]
    return _to_come(
        await app[TODAY].get(household, partial(db.run_read, partial(_today, household=household)))
    )


def today_at_hand(app: web.Application, household: str) -> Booking | Missing | None:
    """What `today` would answer, if it has it at hand (`TtlCache.peek`)."""
    found = app[TODAY].peek(household)
    return found if found is MISSING else _to_come(found)


def _to_come(found: Booking | None) -> Booking | None:
    return found if found is not None and found.ends_at > utcnow() else None


def _today(conn: Connection, household: str) -> Booking | None:
    return bookings.today(conn, household, utcnow())


def _offer(
    conn: Connection, household: str, wanted: str, now: datetime
) -> tuple[list[Lawyer], Lawyer | None, list[Slot]]:
    """The lawyers of the household's village, the one `wanted` (else the first), and
    that lawyer's free slots for the household: one read."""
    village = households.get(conn, household).village
    found = lawyers.for_village(conn, village)
    lawyer = next((x for x in found if x.id == wanted), found[0] if found else None)
    slots = lawyers.bookable(conn, lawyer, village, now) if lawyer is not None else []
    return found, lawyer, slots


async def index(request: web.Request) -> web.Response:
    """The village's lawyer, and the free slots grouped by day, a few days per screen
    (page up / page down for more)."""
    session = await tv_session.required(request)
    found, lawyer, slots = await request.app[DATABASE].run_read(
        partial(_offer, household=session.household, wanted=request.query.get("l", ""),
                now=utcnow())
    )  # fmt: skip
    if lawyer is None:
        return page(request, "tv/lawyer.html", session=session, lawyer=None, lawyers=[],
                    days=[], number=1, pages=1)  # fmt: skip
    days = [(day, list(group)) for day, group in groupby(slots, key=lambda s: s.day)]
    shown, number, pages = screen_of(request, days, DAYS_PER_SCREEN[preferences(request)["simple"]])
    return page(
        request, "tv/lawyer.html", session=session, lawyer=lawyer, lawyers=found, days=shown,
        number=number, pages=pages, stamp=_stamp,
    )  # fmt: skip


def _stamp(slot: Slot) -> int:
    return int(slot.starts_at.timestamp())


async def _slot(request: web.Request, session: Session) -> tuple[Lawyer, Slot] | None:
    """The lawyer and free slot named in the path, if this household may book it now."""
    starts_at = moment(request.match_info["at"])
    if starts_at is None:
        return None
    wanted = request.match_info["lawyer"]
    _, lawyer, free = await request.app[DATABASE].run_read(
        partial(_offer, household=session.household, wanted=wanted, now=utcnow())
    )
    if lawyer is None or lawyer.id != wanted:
        return None
    slot = next((s for s in free if s.starts_at == starts_at), None)
    return None if slot is None else (lawyer, slot)


async def topic(request: web.Request) -> web.Response:
    """Step 2: what the consultation is about, from a preset list."""
    session = await tv_session.required(request)
    chosen = await _slot(request, session)
    if chosen is None:
        return page(request, "tv/lawyer_taken.html", session=session, status=409)
    lawyer, slot = chosen
    return page(request, "tv/lawyer_topic.html", session=session, lawyer=lawyer, slot=slot,
                stamp=_stamp(slot), topics=bookings.TOPICS)  # fmt: skip


async def confirm(request: web.Request) -> web.Response:
    """Step 3: everything once more; OK books, Back does not."""
    session = await tv_session.required(request)
    subject = request.match_info["topic"]
    if subject not in bookings.TOPICS:
        return page(request, "tv/not_found.html", session=session, status=404)
    chosen = await _slot(request, session)
    if chosen is None:
        return page(request, "tv/lawyer_taken.html", session=session, status=409)
    lawyer, slot = chosen
    return page(request, "tv/lawyer_confirm.html", session=session, lawyer=lawyer, slot=slot,
                stamp=_stamp(slot), topic=subject)  # fmt: skip


async def book(request: web.Request) -> web.Response:
    session = await tv_session.required(request)
    form = await tv_session.check_csrf(request, session)
    starts_at = moment(form.get("at", ""))
    lawyer = form.get("lawyer", "")[:64]
    if starts_at is None:
        raise web.HTTPBadRequest(text="Damaged form.")
    db = request.app[DATABASE]
    book = partial(
        bookings.book, lawyer=lawyer, household=session.household, starts_at=starts_at,
        topic=form.get("topic", ""), channel="tv", by=tv_session.actor(session), now=utcnow(),
    )  # fmt: skip
    try:
        made = await db.run_write(
            partial(_audited, work=book, entry=_entry(request, session, "booking.book"))
        )
    except bookings.SlotTaken:
        holder = await db.run_read(partial(bookings.holder, lawyer=lawyer, starts_at=starts_at))
        if holder == session.household:  # the same OK twice: it is already theirs
            raise web.HTTPSeeOther("/tv/lawyer/bookings") from None
        return page(request, "tv/lawyer_taken.html", session=session, status=409)
    except bookings.TooMany:
        return page(
            request, "tv/lawyer_taken.html", session=session, status=409, too_many=True,
            most=bookings.MAX_UPCOMING,
        )  # fmt: skip
    except (bookings.TooLate, InvalidInput, NotFound):
        return page(request, "tv/lawyer_taken.html", session=session, status=409)
    request.app[TODAY].forget(session.household)
    raise web.HTTPSeeOther(f"/tv/lawyer/bookings/{made.id}?new=1")


async def mine(request: web.Request) -> web.Response:
    session = await tv_session.required(request)
    found = await request.app[DATABASE].run_read(
        partial(bookings.of_household, household=session.household, now=utcnow(), limit=6)
    )
    return page(request, "tv/lawyer_bookings.html", session=session, bookings=found)


async def _own(request: web.Request, session: Session) -> Booking | None:
    db = request.app[DATABASE]
    return await by_path_id(
        request,
        lambda ident: db.run_read(partial(bookings.get, id=ident, household=session.household)),
    )


async def one(request: web.Request) -> web.Response:
    session = await tv_session.required(request)
    booking = await _own(request, session)
    if booking is None:
        return page(request, "tv/not_found.html", session=session, status=404)
    return page(
        request, "tv/lawyer_booking.html", session=session, booking=booking,
        cancellable=booking.household_may_cancel(utcnow()),
        new=request.query.get("new") == "1", late=request.query.get("late") == "1",
    )  # fmt: skip


async def cancel_form(request: web.Request) -> web.Response:
    """Why cancel? Each preset reason is its own button; Back keeps the booking."""
    session = await tv_session.required(request)
    booking = await _own(request, session)
    if booking is None:
        return page(request, "tv/not_found.html", session=session, status=404)
    return page(request, "tv/lawyer_cancel.html", session=session, booking=booking,
                reasons=bookings.HOUSEHOLD_REASONS)  # fmt: skip


async def cancel(request: web.Request) -> web.Response:
    session = await tv_session.required(request)
    form = await tv_session.check_csrf(request, session)
    booking = await _own(request, session)
    if booking is None:
        return page(request, "tv/not_found.html", session=session, status=404)
    cancel = partial(
        bookings.cancel, id=booking.id, reason=form.get("reason", ""),
        by=tv_session.actor(session), now=utcnow(), household=session.household,
    )  # fmt: skip
    entry = _entry(request, session, "booking.cancel")
    try:
        await request.app[DATABASE].run_write(partial(_audited, work=cancel, entry=entry))
    except InvalidInput:
        raise web.HTTPBadRequest(text="Unknown reason.") from None
    except Conflict:  # too late, or already cancelled or over
        raise web.HTTPSeeOther(f"/tv/lawyer/bookings/{booking.id}?late=1") from None
    request.app[TODAY].forget(session.household)
    raise web.HTTPSeeOther(f"/tv/lawyer/bookings/{booking.id}")


def moment(text: str) -> datetime | None:
    """A slot's start from its Unix time in a link or form, if it could be a bookable
    one (nothing before yesterday or beyond the longest booking window)."""
    stamp = validation.number(text, 12)
    if stamp is None:
        return None
    now = utcnow().timestamp()
    if not now - 86_400 <= stamp <= now + (lawyers.MAX_WINDOW_DAYS + 1) * 86_400:
        return None
    return datetime.fromtimestamp(stamp, UTC)


def _entry(request: web.Request, session: Session, action: str) -> audit.Entry:
    return audit.Entry(actor=tv_session.actor(session), action=action, address=request.remote or "")


def _audited(
    conn: Connection, work: Callable[[Connection], Booking], entry: audit.Entry
) -> Booking:
    """`work`, and its audit entry (naming the booking) in the same transaction."""
    booking = work(conn)
    detail = f"{booking.lawyer} {booking.starts_at.isoformat()} {booking.topic}"
    if booking.cancel_reason:
        detail += f" {booking.cancel_reason}"
    audit.write(conn, replace(entry, target=str(booking.id), detail=detail))
    return booking


def setup(app: web.Application) -> None:
    app[TODAY] = TtlCache(TODAY_TTL_S)
    add = app.router.add_route
    add("GET", "/tv/lawyer", index, name="tv_lawyer")
    add("GET", "/tv/lawyer/slot/{lawyer}/{at}", topic, name="tv_lawyer_topic")
    add("GET", "/tv/lawyer/slot/{lawyer}/{at}/{topic}", confirm, name="tv_lawyer_confirm")
    add("POST", "/tv/lawyer/book", book, name="tv_lawyer_book")
    add("GET", "/tv/lawyer/bookings", mine, name="tv_lawyer_bookings")
    add("GET", "/tv/lawyer/bookings/{id}", one, name="tv_lawyer_booking")
    add("GET", "/tv/lawyer/bookings/{id}/cancel", cancel_form, name="tv_lawyer_cancel_form")
    add("POST", "/tv/lawyer/bookings/{id}/cancel", cancel, name="tv_lawyer_cancel")
