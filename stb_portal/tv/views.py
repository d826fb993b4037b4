"""Household pages: pairing, home, settings, and the key log."""

from __future__ import annotations

import logging
import re

from aiohttp import web

from stb_portal.tv import lawyer_views
from stb_portal.tv import session as tv_session
from stb_portal.tv.render import (
    LANG_COOKIE,
    RENDERED,
    SD_COOKIE,
    SIMPLE_COOKIE,
    RenderCache,
    cached_page,
    page,
)
from xueliang import households, pairing
from xueliang.alarms import LatestHouseholdAlarms
from xueliang.errors import NotFound
from xueliang.households import HouseholdCache
from xueliang.pairing import Session
from xueliang.ratelimit import DeviceLimiter
from xueliang.ttl_cache import MISSING, TtlCache
from xueliang.web import ALARMS, DATABASE, EVENT_BUS

log = logging.getLogger(__name__)

_KEYLOG = web.AppKey("keylog_limiter", DeviceLimiter)
_CODE = re.compile(r"\d{1,6}")
# What the home page shows, kept in memory (see `home`); set when the app starts.
HOUSEHOLDS = web.AppKey("tv_households", HouseholdCache)
LATEST_ALARMS = web.AppKey("tv_latest_alarms", LatestHouseholdAlarms)


async def home(request: web.Request) -> web.Response:
    """The household's tiles, and its open alarm if any. Asked for on every visit, so
    it costs no query: the name is at most `households.CACHE_TTL_S` old; the alarm is
    fresh after any change made in this process and at most `alarms.LATEST_TTL_S` late
    for changes made elsewhere; the HTML is rendered once per distinct input."""
    session = await tv_session.current(request)
    if session is None:
        return await unpaired(request)
    app, household_id = request.app, session.household
    household = app[HOUSEHOLDS].peek(household_id)
    latest = app[LATEST_ALARMS].peek(household_id)
    booking = lawyer_views.today_at_hand(app, household_id)
    # Usually all three are at hand; any that is not is loaded (or refreshed) here.
    if household is MISSING:
        household = await app[HOUSEHOLDS].get(household_id)
    if latest is MISSING:
        latest = await app[LATEST_ALARMS].get(household_id)
    if booking is MISSING:
        booking = await lawyer_views.today(app, household_id)
    open_alarm = latest if latest is not None and latest.open else None
    return cached_page(
        request, "tv/home.html", session=session, household=household, open_alarm=open_alarm,
        today_booking=booking,
    )  # fmt: skip


async def unpaired(request: web.Request) -> web.Response:
    """A box nobody paired yet: show its code until the duty centre binds it."""
    db = request.app[DATABASE]
    secret = request.cookies.get(tv_session.BOX_COOKIE, "")
    async with db.transaction() as conn:
        state = await pairing.waiting(conn, secret) if 0 < len(secret) <= 100 else None
        if state is None:
            code, secret = await pairing.start(conn)
            bound = None
        else:
            code, bound = state
    if bound is not None:
        paired = web.HTTPSeeOther("/tv/")
        tv_session.issue(paired, request, bound)
        paired.del_cookie(tv_session.BOX_COOKIE, path="/tv")
        raise paired
    response = page(request, "tv/unpaired.html", code=code)
    tv_session.set_box(response, request, secret)
    return response


async def pair(request: web.Request) -> web.Response:
    """`/tv/pair/{token}`: the household's link binds this box."""
    token = request.match_info["token"]
    async with request.app[DATABASE].read() as conn:
        try:
            if len(token) > 100:
                raise NotFound("pairing token", "(hidden)")
            household = await households.by_pair_token(conn, token)
        except NotFound:
            return page(request, "tv/pair_invalid.html", status=404)
        generation = await conn.run_sync(pairing.generation, household.id)
    assert generation is not None
    response = web.HTTPSeeOther("/tv/")
    tv_session.issue(response, request, Session(household.id, generation))
    raise response


async def settings_page(request: web.Request) -> web.Response:
    session = await tv_session.required(request)
    return page(request, "tv/settings.html", session=session)


async def save_settings(request: web.Request) -> web.Response:
    session = await tv_session.required(request)
    form = await tv_session.check_csrf(request, session)
    response = web.HTTPSeeOther("/tv/settings")
    choices = {
        LANG_COOKIE: ("zh_CN", "en"),
        SIMPLE_COOKIE: ("1", "0"),
        SD_COOKIE: ("1", "0"),
    }
    for name, allowed in choices.items():
        value = form.get(name.removeprefix("xl_"))
        if value in allowed:
            response.set_cookie(name, value, max_age=400 * 86_400, path="/tv", samesite="Lax")
    raise response


async def keylog(request: web.Request) -> web.Response:
    """Key codes the key layer did not know: logged so the tables can grow. A box
    cannot flood the log: a few reports per minute per address."""
    code, kind = request.query.get("c", ""), request.query.get("t", "")
    limiter = request.app[_KEYLOG]
    known_kind = kind in ("keydown", "keypress", "irkeypress")
    if _CODE.fullmatch(code) and known_kind and limiter.allow(request.remote or "?"):
        agent = request.headers.get("User-Agent", "")[:160]
        log.info("unknown TV key code %s (%s) from %r", code, kind, agent)
    return web.Response(status=204)


async def _to_home(_: web.Request) -> web.Response:
    raise web.HTTPMovedPermanently("/tv/")


async def _home_caches(app: web.Application) -> None:
    app[HOUSEHOLDS] = HouseholdCache(app[DATABASE])
    latest = LatestHouseholdAlarms(app[ALARMS])  # forgets on every commit of this process
    app[LATEST_ALARMS] = latest
    if EVENT_BUS in app:  # and, when there is a bus, on every change anywhere
        app[EVENT_BUS].subscribe(latest.invalidate)


def setup(app: web.Application) -> None:
    app[_KEYLOG] = DeviceLimiter(burst=10, per_minute=10)
    app[tv_session.GENERATIONS] = TtlCache(tv_session.GENERATION_TTL_S)
    app[tv_session.TOKENS] = {}
    app[RENDERED] = RenderCache()
    # After every cleanup context (the database and alarm service, the event bus).
    app.on_startup.append(_home_caches)
    # `/tv/` before `/tv`: aiohttp tries the resources of one path prefix in the order
    # they were added, and the home page is the most asked-for page of all.
    app.router.add_get("/tv/", home, name="tv_home")
    app.router.add_get("/tv", _to_home, name="tv_root")
    app.router.add_get("/tv/pair/{token}", pair, name="tv_pair")
    app.router.add_get("/tv/settings", settings_page, name="tv_settings")
    app.router.add_post("/tv/settings", save_settings, name="tv_settings_save")
    app.router.add_get("/tv/keylog", keylog, name="tv_keylog")
