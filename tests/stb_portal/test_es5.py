"""The oldest boxes run ES5 (some ES3): every script the TV pages serve must parse as
strict ES5 and avoid APIs those engines lack."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from calmjs.parse import es5
from calmjs.parse.exceptions import ECMASyntaxError

from stb_portal.static import STATIC_DIR
from tests.helpers import REPO

SCRIPTS = sorted(STATIC_DIR.glob("*.js"))
# Not in old WebKit / iPanel / CE-HTML engines, or not in ES5 at all.
MISSING_ON_OLD_BOXES = [
    r"\bfetch\s*\(", r"\bPromise\b", r"\basync\b", r"\bawait\b", r"=>", r"\blet\s", r"\bconst\s",
    r"\bclass\s", r"`", r"\.forEach\s*\(", r"\.map\s*\(", r"\.filter\s*\(", r"\bJSON\.",
    r"\bObject\.keys\b", r"\bclassList\b", r"\bquerySelector", r"\baddEventListener\b",
    r"\bdataset\b", r"\.includes\s*\(", r"\bSymbol\b", r"\bMap\s*\(", r"\bSet\s*\(",
    r"\brequestAnimationFrame\b", r"\bgetElementsByClassName\b", r"\.trim\s*\(",
]  # fmt: skip


def test_there_is_one_small_script() -> None:
    assert [p.name for p in SCRIPTS] == ["tv.js"]
    assert SCRIPTS[0].stat().st_size < 16 * 1024


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_parse_as_es5(script: Path) -> None:
    try:
        es5(script.read_text(encoding="utf-8"))
    except ECMASyntaxError as e:  # pragma: no cover - the failure message is the point
        pytest.fail(f"{script.name} is not ES5: {e}")


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_avoid_apis_old_engines_lack(script: Path) -> None:
    code = re.sub(r"/\*.*?\*/", "", script.read_text(encoding="utf-8"), flags=re.DOTALL)
    code = re.sub(r'"(?:[^"\\]|\\.)*"', '""', code)  # strings may mention anything
    found = [pattern for pattern in MISSING_ON_OLD_BOXES if re.search(pattern, code)]
    assert not found


def test_the_gate_would_catch_es2015() -> None:
    """The parser really is strict: modern syntax is refused."""
    for modern in ("let a = 1;", "var f = (x) => x;", "class A {}", "var s = `x`;"):
        with pytest.raises(ECMASyntaxError):
            es5(modern)


def test_templates_have_no_inline_scripts() -> None:
    """All behaviour lives in the one checked file."""
    for template in (REPO / "templates" / "tv").glob("*.html"):
        text = template.read_text(encoding="utf-8")
        assert "<script>" not in text and " on" + "click=" not in text, template.name
