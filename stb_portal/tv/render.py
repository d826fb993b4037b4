"""Rendering TV pages: the household's language, simple mode and screen size come
from cookies; every page is gzipped and never cached by the box (states change).

Pages asked for on every visit (the home page) use `cached_page`: their HTML is a
function of the template, the preferences, the session and the context alone, so it is
rendered and gzipped once per distinct input and then served from memory."""

from __future__ import annotations

import zlib
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import jinja2
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from stb_portal import i18n
from stb_portal.keys import JINJA, STATIC, TRANSLATIONS
from stb_portal.tv.session import cookies, csrf_token
from xueliang import validation
from xueliang.alarm_payloads import iso
from xueliang.errors import NotFound
from xueliang.geography import LOCAL_TIME
from xueliang.pairing import Session
from xueliang.resources import templates_dir

T = TypeVar("T")
LANG_COOKIE = "xl_lang"
SIMPLE_COOKIE = "xl_simple"
SD_COOKIE = "xl_sd"
# A TV page is 1–10 KB. An 8 KB window and a small hash table (memLevel 4) compress it
# to within ~2 % of zlib's defaults (32 KB, 8; what aiohttp's enable_compression uses)
# with a sixth of the state to set up per response: 22 µs for the 1.9 KB home page,
# against 25–77 µs (depending on the heap) with the defaults. The level barely matters
# at this size (level 1: ~5 % bigger, a few µs less); cached pages are compressed once,
# at the best level.
GZIP_LEVEL = 6
CACHED_GZIP_LEVEL = 9
_GZIP_WBITS = 16 + 13  # gzip header, 8 KB window
_GZIP_MEM_LEVEL = 4
# Built once (each response copies them).
_PLAIN_HEADERS = CIMultiDictProxy(
    CIMultiDict(
        {
            "Content-Type": "text/html; charset=utf-8",
            "Cache-Control": "no-store",
            "Vary": "Accept-Encoding, Cookie",
        }
    )
)
_GZIP_HEADERS = CIMultiDictProxy(CIMultiDict(_PLAIN_HEADERS, **{"Content-Encoding": "gzip"}))


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,  # templates ship with the code; no stat() per page
    )
    env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=i18n.gettext, ngettext=i18n.ngettext, newstyle=True
    )
    env.filters["clock"] = _clock
    env.filters["iso"] = iso
    return env


def _clock(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(LOCAL_TIME).strftime("%m-%d %H:%M")


def preferences(request: web.Request) -> dict[str, Any]:
    sent = cookies(request)
    lang = sent.get(LANG_COOKIE, i18n.DEFAULT_LANG)
    return {
        "lang": lang if lang in i18n.LANGS else i18n.DEFAULT_LANG,
        "simple": sent.get(SIMPLE_COOKIE, "1") != "0",
        "sd": sent.get(SD_COOKIE) == "1",
    }


def page(
    request: web.Request,
    template: str,
    *,
    session: Session | None = None,
    status: int = 200,
    **context: Any,
) -> web.Response:
    prefs = preferences(request)
    html = _render(request, template, prefs, session, context).encode()
    if _accepts_gzip(request):
        return _response(gzip_body(html), _GZIP_HEADERS, status)
    return _response(html, _PLAIN_HEADERS, status)


def cached_page(
    request: web.Request, template: str, *, session: Session, **context: Hashable
) -> web.Response:
    """`page`, rendered and gzipped once per distinct input. Only for templates whose
    HTML depends on nothing but their context, the preferences and the session (no
    clock, no request data): every context value must be hashable and equal to
    another only when both render the same, as frozen dataclasses are."""
    prefs = preferences(request)
    key = (template, prefs["lang"], prefs["simple"], prefs["sd"], session, *context.items())
    cache = request.app[RENDERED]
    rendered = cache.get(key)
    if rendered is None:
        html = _render(request, template, prefs, session, context).encode()
        rendered = cache.put(key, Rendered(html, gzip_body(html, CACHED_GZIP_LEVEL)))
    if _accepts_gzip(request):
        return _response(rendered.gzipped, _GZIP_HEADERS)
    return _response(rendered.plain, _PLAIN_HEADERS)


def _render(
    request: web.Request,
    template: str,
    prefs: dict[str, Any],
    session: Session | None,
    context: dict[str, Any],
) -> str:
    app = request.app
    with i18n.speaking(app[TRANSLATIONS][prefs["lang"]]):
        return (
            app[JINJA]
            .get_template(template)
            .render(
                **prefs,
                static=app[STATIC].url,
                session=session,
                csrf=csrf_token(request, session) if session else "",
                **context,
            )
        )


def screen_of(request: web.Request, items: Sequence[T], size: int) -> tuple[Sequence[T], int, int]:
    """The screenful of `items` that `?p=` asks for (`size` a screen; the first when
    `p` is missing or no number, the last when beyond), its number, and how many."""
    pages = max(1, -(-len(items) // size))
    number = min(max(validation.number(request.query.get("p", "1"), 5) or 1, 1), pages)
    return items[(number - 1) * size : number * size], number, pages


async def by_path_id(request: web.Request, fetch: Callable[[int], Awaitable[T]]) -> T | None:
    """What `fetch` finds for the path's `id`; None when the id is no row id or nothing
    is found (another household's alarm, booking or poll is nothing, too)."""
    ident = validation.row_id(request.match_info["id"])
    if ident is None:
        return None
    try:
        return await fetch(ident)
    except NotFound:
        return None


def _accepts_gzip(request: web.Request) -> bool:
    return "gzip" in request.headers.get("Accept-Encoding", "")


def _response(body: bytes, headers: CIMultiDictProxy[str], status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, headers=headers)


def gzip_body(body: bytes, level: int = GZIP_LEVEL) -> bytes:
    """A gzip member (no file name, mtime 0) that any box's browser inflates."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, _GZIP_WBITS, _GZIP_MEM_LEVEL)
    return compressor.compress(body) + compressor.flush()


@dataclass(frozen=True, slots=True)
class Rendered:
    plain: bytes
    gzipped: bytes


class RenderCache:
    """Rendered pages by their inputs; the oldest entry goes when it is full (an entry
    is ~3 KB with its gzip twin and its key, so the default bounds it to ~16 MB; a
    household's boxes usually share one entry until its name or alarm changes)."""

    def __init__(self, max_items: int = 5_000) -> None:
        self.max_items = max_items
        self._items: dict[Hashable, Rendered] = {}

    def get(self, key: Hashable) -> Rendered | None:
        return self._items.get(key)

    def put(self, key: Hashable, rendered: Rendered) -> Rendered:
        if len(self._items) >= self.max_items:
            del self._items[next(iter(self._items))]
        self._items[key] = rendered
        return rendered

    def __len__(self) -> int:
        return len(self._items)


RENDERED = web.AppKey("tv_rendered_pages", RenderCache)
