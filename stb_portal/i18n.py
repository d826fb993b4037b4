"""Translations: gettext catalogues in `locale/*/LC_MESSAGES/messages.po` (Babel),
compiled in memory at start, chosen per request."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALE_DIR = Path(__file__).with_name("locale")
LANGS = ("zh_CN", "en")
DEFAULT_LANG = "zh_CN"

_NONE = NullTranslations()
_current: ContextVar[NullTranslations | None] = ContextVar("translations", default=None)


def load() -> dict[str, NullTranslations]:
    """Every language's catalogue, compiled from its .po file."""
    catalogues: dict[str, NullTranslations] = {}
    for lang in LANGS:
        with (LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po").open("rb") as f:
            catalog = read_po(f, locale=lang)
        compiled = io.BytesIO()
        write_mo(compiled, catalog)
        compiled.seek(0)
        catalogues[lang] = Translations(compiled)
    return catalogues


@contextmanager
def speaking(translations: NullTranslations) -> Iterator[None]:
    """Render (or format) in this language for the duration of the block."""
    token = _current.set(translations)
    try:
        yield
    finally:
        _current.reset(token)


def gettext(message: str) -> str:
    return (_current.get() or _NONE).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return (_current.get() or _NONE).ngettext(singular, plural, n)
