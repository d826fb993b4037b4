"""ffmpeg discovery: configured, else system, else the wheel's own binary."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.helpers import require_binary
from xueliang.errors import FfmpegNotFound
from xueliang.ffmpeg import find_ffmpeg


def test_system_ffmpeg_preferred() -> None:
    system = require_binary("ffmpeg")
    found = find_ffmpeg()
    assert (found.source, str(found.path)) == ("system", system)


def test_bundled_ffmpeg_when_none_on_path(tmp_path: Path) -> None:
    """`pip install` alone must be enough: the bundled binary runs."""
    found = find_ffmpeg(search_path=str(tmp_path))
    assert found.source == "bundled"
    out = subprocess.run([found.path, "-version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("ffmpeg version")


def test_configured_binary(tmp_path: Path) -> None:
    with pytest.raises(FfmpegNotFound, match="not an executable"):
        find_ffmpeg(tmp_path / "ffmpeg")
    fake = tmp_path / "ffmpeg"
    fake.write_text("#!/bin/sh\n")
    with pytest.raises(FfmpegNotFound):
        find_ffmpeg(fake)  # not executable
    fake.chmod(0o755)
    assert find_ffmpeg(fake).source == "config"
