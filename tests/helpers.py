"""Helpers shared by the test modules (fixtures live in conftest.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
REQUIRE_ALL = os.environ.get("XL_TEST_REQUIRE_ALL") == "1"


def missing(component: str) -> None:
    """Skip when a component is absent locally; CI (XL_TEST_REQUIRE_ALL=1) fails instead."""
    message = f"{component} is not available"
    if REQUIRE_ALL:
        pytest.fail(message + " (XL_TEST_REQUIRE_ALL=1)")
    pytest.skip(message)


def require_binary(name: str) -> str:
    path = shutil.which(name) or (
        f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None
    )
    if path is None:
        missing(name)
    assert path is not None
    return path


def xueliang(
    *args: str, env: Mapping[str, str], stdin: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run the real `xueliang` command in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "xueliang", *args],
        env={**os.environ, **env},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
