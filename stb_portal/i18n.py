"""Translations: gettext catalogues in `locale/*/LC_MESSAGES/*.po` (Babel; one file per
feature, `messages.po` for the core), compiled in memory at start, chosen per request."""

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
        catalog = None
        for path in po_files(lang):
            with path.open("rb") as f:
                part = read_po(f, locale=lang)
            if catalog is None:
                catalog = part
                continue
            for message in part:
                if message.id:
                    catalog[message.id] = message
        assert catalog is not None, f"no catalogue for {lang}"
        compiled = io.BytesIO()
        write_mo(compiled, catalog)
        compiled.seek(0)
        catalogues[lang] = Translations(compiled)
    return catalogues


def po_files(lang: str) -> list[Path]:
    """The catalogue files of `lang`: `messages.po` first, then the features' files."""
    folder = LOCALE_DIR / lang / "LC_MESSAGES"
    return sorted(folder.glob("*.po"), key=lambda p: (p.name != "messages.po", p.name))


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
