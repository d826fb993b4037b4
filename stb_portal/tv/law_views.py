"""Legal information on the TV: categories by life situation, articles paged for the
screen with page up/down, each with its dates and a way to the village lawyer."""

from __future__ import annotations

from aiohttp import web

from stb_portal.tv import session as tv_session
from stb_portal.tv.render import page, preferences, screen_of
from xueliang import law
from xueliang.errors import NotFound
from xueliang.web import DATABASE

# Characters per screen: fewer, larger letters in simple mode.
PAGE_BUDGET = {True: 150, False: 240}
LIST_SIZE = {True: 4, False: 6}


async def index(request: web.Request) -> web.Response:
    session = await tv_session.required(request)
    async with request.app[DATABASE].read() as conn:
        counts = await law.counts(conn)
    return page(
        request, "tv/law_index.html", session=session, categories=law.CATEGORIES, counts=counts
    )


async def category(request: web.Request) -> web.Response:
    session = await tv_session.required(request)
    prefs = preferences(request)
    try:
        async with request.app[DATABASE].read() as conn:
            articles = await law.in_category(conn, request.match_info["category"], prefs["lang"])
    except NotFound:
        return page(request, "tv/not_found.html", session=session, status=404)
    shown, number, pages = screen_of(request, articles, LIST_SIZE[prefs["simple"]])
    return page(
        request, "tv/law_category.html", session=session,
        category=request.match_info["category"], articles=shown, number=number, pages=pages,
    )  # fmt: skip


async def article(request: web.Request) -> web.Response:
    session = await tv_session.required(request)
    prefs = preferences(request)
    category = request.match_info["category"]
    try:
        async with request.app[DATABASE].read() as conn:
            found = await law.get(conn, request.match_info["id"][:64], prefs["lang"])
        if found.category != category:
            raise NotFound("article", found.id)
    except NotFound:
        return page(request, "tv/not_found.html", session=session, status=404)
    screens = found.pages(PAGE_BUDGET[prefs["simple"]])
    [paragraphs], number, pages = screen_of(request, screens, 1)
    return page(
        request, "tv/law_article.html", session=session, article=found,
        paragraphs=paragraphs, number=number, pages=pages,
    )  # fmt: skip


def setup(app: web.Application) -> None:
    app.router.add_get("/tv/law", index, name="tv_law")
    app.router.add_get("/tv/law/{category}", category, name="tv_law_category")
    app.router.add_get("/tv/law/{category}/{id}", article, name="tv_law_article")
