"""Files the code reads at run time, found the same way in a source tree, an editable
install and a wheel."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).parent


def templates_dir() -> Path:
    """`templates/`: inside the package in a wheel, beside it in a source checkout."""
    for candidate in (_PACKAGE / "templates", _PACKAGE.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("the templates directory is missing from this installation")
