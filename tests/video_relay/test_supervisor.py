"""ffmpeg supervision: credentials never reach the log, a stopped (even frozen)
ffmpeg is gone with its whole process group, a killed relay takes its ffmpegs with
it, restarts are paced."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import require_binary
from video_relay.supervisor import RESTART_DELAYS_S, Ffmpeg, Pacing


async def test_stderr_is_kept_without_credentials(caplog: pytest.LogCaptureFixture) -> None:
    ffmpeg = Ffmpeg("gate")
    source = "http://admin:s3cret-pass@127.0.0.1:9/cam.ts"
    await ffmpeg.start(
        [
            require_binary("ffmpeg"),
            "-nostdin",
            "-rw_timeout",
            "2000000",
            "-i",
            source,
            "-f",
            "null",
            "-",
        ]
    )
    assert await ffmpeg.wait() != 0
    assert ffmpeg.stderr and any("***@127.0.0.1" in line for line in ffmpeg.stderr)
    with caplog.at_level(logging.WARNING):
        ffmpeg.dump("exited")
    assert "s3cret" not in caplog.text and "s3cret" not in "".join(ffmpeg.stderr)


async def test_a_frozen_ffmpeg_is_killed_with_its_group() -> None:
    ffmpeg = Ffmpeg("frozen")
    await ffmpeg.start([require_binary("ffmpeg"), "-nostdin", "-re", "-f", "lavfi",
                        "-i", "testsrc2", "-f", "null", "-"])  # fmt: skip
    assert ffmpeg.pid is not None and os.getpgid(ffmpeg.pid) == ffmpeg.pid  # its own group
    os.kill(ffmpeg.pid, signal.SIGSTOP)  # SIGTERM alone would never be acted on
    await ffmpeg.stop(grace_s=0.5)
    assert not ffmpeg.running
    with pytest.raises(ProcessLookupError):
        os.killpg(ffmpeg.pid, 0)


# A relay in miniature: starts one endless ffmpeg, prints its pid, then waits.
_RELAY = """
import asyncio, sys
from video_relay.supervisor import Ffmpeg
async def main():
    ffmpeg = Ffmpeg("orphan")
    await ffmpeg.start(sys.argv[1:])
    print(ffmpeg.pid, flush=True)
    await asyncio.sleep(3600)
asyncio.run(main())
"""


def test_a_killed_relay_takes_its_ffmpeg_with_it() -> None:
    """SIGKILL (or the OOM killer) gives the relay no chance to stop anything: the
    kernel must end its ffmpeg, or it would run for ever and fight the restarted
    relay's ffmpeg over the same HLS folder."""
    relay = subprocess.Popen(
        # Quiet, as the relay runs it: an ffmpeg that writes to stderr would die of
        # the closed pipe by itself.
        [sys.executable, "-c", _RELAY, require_binary("ffmpeg"), "-nostdin", "-re",
         "-loglevel", "warning", "-nostats", "-f", "lavfi", "-i", "testsrc2",
         "-f", "null", "-"],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    try:
        assert relay.stdout is not None
        pid = int(relay.stdout.readline())
        ffmpeg = os.path.realpath(require_binary("ffmpeg"))
        deadline = time.monotonic() + 10
        while _exe(pid) != ffmpeg and time.monotonic() < deadline:  # setpriv exec'd it
            time.sleep(0.01)
        assert _exe(pid) == ffmpeg
    finally:
        relay.kill()
        relay.communicate()
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    alive = _alive(pid)
    if alive:
        os.kill(pid, signal.SIGKILL)  # leave nothing behind, then fail
    assert not alive, "ffmpeg outlived its relay"


def _exe(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    """Running, not merely a zombie waiting for init to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def test_restarts_are_paced_and_reset_after_a_healthy_run() -> None:
    pacing = Pacing()
    pauses = [pacing.failed(ran_for_s=0.5) for _ in range(len(RESTART_DELAYS_S) + 2)]
    assert pauses[:5] == [1.0] * 5 and pauses[5:8] == [5.0, 10.0, 60.0]
    assert pauses[-1] == 60.0 and pacing.crash_looping
    assert pacing.failed(ran_for_s=600) == 1.0  # it ran well for a while: start again
