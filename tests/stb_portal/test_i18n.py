"""Every string a villager or a centre's staff reads comes from the catalogues, and
both catalogues are complete: a page never shows half Chinese, half English."""

from __future__ import annotations

import re

import pytest
from babel.messages.extract import extract_from_dir, extract_from_file
from babel.messages.pofile import read_po

from stb_portal.i18n import LANGS, po_files
from tests.helpers import REPO


def extracted() -> set[str]:
    found = extract_from_dir(
        str(REPO / "templates"), method_map=[("tv/**.html", "jinja2"), ("centre/**.html", "jinja2")]
    )
    messages = {message for _f, _l, message, _c, _x in found if isinstance(message, str)}
    in_code = set()
    for module in (REPO / "stb_portal").glob("*/*.py"):  # views that translate in code
        if "i18n.gettext" in module.read_text(encoding="utf-8"):
            in_code |= {
                m[1] for m in extract_from_file("python", str(module)) if isinstance(m[1], str)
            }
    return messages | in_code


def catalogue(lang: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for path in po_files(lang):
        with path.open("rb") as f:
            for m in read_po(f):
                if m.id and isinstance(m.id, str):
                    # A message may sit in two features' files, translated the same.
                    assert found.get(m.id, m.string) == m.string, f"{path.name}: {m.id!r}"
                    found[m.id] = m.string  # type: ignore[assignment]
    return found


@pytest.mark.parametrize("lang", LANGS)
def test_catalogue_is_complete(lang: str) -> None:
    messages = catalogue(lang)
    wanted = extracted()
    assert wanted - set(messages) == set(), f"{lang}: run the extraction and translate"
    assert [m for m in wanted if not messages[m]] == []
    for message in wanted:  # placeholders survive translation
        assert set(re.findall(r"%\(\w+\)s", message)) == set(
            re.findall(r"%\(\w+\)s", messages[message])
        )


def test_chinese_is_really_chinese() -> None:
    messages = catalogue("zh_CN")
    untranslated = [m for m, t in messages.items() if t == m and re.search("[a-z]{3}", m)]
    assert untranslated == []


def test_templates_have_no_bare_text() -> None:
    """Text between tags must go through _() (numbers, names and markup excepted)."""
    templates = [*(REPO / "templates" / "tv").glob("*.html")]
    templates += (REPO / "templates" / "centre").glob("*.html")
    for template in templates:
        text = template.read_text(encoding="utf-8")
        text = re.sub(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", "", text, flags=re.DOTALL)
        for chunk in re.findall(r">([^<]+)<", text):
            if '="' in chunk:  # attributes written by a block, not text
                continue
            words = re.sub(r"[\s·0-9()x*#/—–、✔%:]+", "", chunk)
            assert words in ("", "中文", "English"), f"{template.name}: {chunk!r}"
