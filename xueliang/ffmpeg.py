"""Which ffmpeg binary to run: configured, else the system one, else the bundled one,
so `pip install` alone is enough to run the video relay."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from xueliang.errors import FfmpegNotFound


@dataclass(frozen=True, slots=True)
class Ffmpeg:
    path: Path
    source: Literal["config", "system", "bundled"]


def find_ffmpeg(configured: Path | None = None, search_path: str | None = None) -> Ffmpeg:
    """Locate ffmpeg; `search_path` defaults to $PATH."""
    if configured is not None:
        if not (configured.is_file() and os.access(configured, os.X_OK)):
            raise FfmpegNotFound(f"configured ffmpeg {configured} is not an executable file")
        return Ffmpeg(configured, "config")
    system = shutil.which("ffmpeg", path=search_path)
    if system is not None:
        return Ffmpeg(Path(system), "system")
    try:
        import imageio_ffmpeg

        return Ffmpeg(Path(imageio_ffmpeg.get_ffmpeg_exe()), "bundled")
    except (ImportError, RuntimeError) as e:
        raise FfmpegNotFound(
            f"no ffmpeg on PATH and no bundled one ({e}); install ffmpeg or set video.ffmpeg"
        ) from None
