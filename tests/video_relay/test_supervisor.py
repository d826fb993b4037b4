"""ffmpeg supervision: credentials never reach the log, a stopped (even frozen)
ffmpeg is gone with its whole process group, restarts are paced."""

from __future__ import annotations

import logging
import os
import signal

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


def test_restarts_are_paced_and_reset_after_a_healthy_run() -> None:
    pacing = Pacing()
    pauses = [pacing.failed(ran_for_s=0.5) for _ in range(len(RESTART_DELAYS_S) + 2)]
    assert pauses[:5] == [1.0] * 5 and pauses[5:8] == [5.0, 10.0, 60.0]
    assert pauses[-1] == 60.0 and pacing.crash_looping
    assert pacing.failed(ran_for_s=600) == 1.0  # it ran well for a while: start again
