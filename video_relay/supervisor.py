"""One supervised ffmpeg: its own process group, stderr kept in a ring buffer with
credentials scrubbed, stopped by terminate → wait → kill (a SIGSTOPped ffmpeg ignores
SIGTERM until it is killed), gone with the relay however the relay ends, and the
pacing of restarts.

Restart pacing follows go2rtc's: 1 s for five tries, then 5 s, 10 s and 60 s; a
camera that keeps failing is retried once a minute and never spins a core."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import time
from collections import deque
from collections.abc import Sequence

from xueliang.urls import redact_text

log = logging.getLogger(__name__)

STDERR_LINES = 100
RESTART_DELAYS_S = (1.0, 1.0, 1.0, 1.0, 1.0, 5.0, 10.0, 60.0)
# A run that lasted this long was healthy: the next failure starts the pacing again.
HEALTHY_RUN_S = 60.0
# A relay that is killed (SIGKILL, the OOM killer, a crash) cannot stop its ffmpegs,
# and an ffmpeg reading a camera with nothing to tell it otherwise runs for ever —
# burning a core and writing the camera's HLS folder, which the relay's restart then
# writes again with a second ffmpeg. So on Linux each ffmpeg is started through
# util-linux's `setpriv --pdeathsig KILL`, which asks the kernel to kill it when the
# relay's thread that started it ends, then execs ffmpeg in the same process (no
# Python runs between fork and exec). The relay starts ffmpegs from its event loop's
# thread, which lives as long as the relay.
_SETPRIV = shutil.which("setpriv")
PARENT_DEATH = (_SETPRIV, "--pdeathsig", "KILL", "--") if _SETPRIV else ()


class Ffmpeg:
    """A running ffmpeg and the last lines it wrote to stderr."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.process: asyncio.subprocess.Process | None = None
        self.stderr: deque[str] = deque(maxlen=STDERR_LINES)
        self.started_at = 0.0
        self._reader: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self, argv: Sequence[str]) -> None:
        self.stderr.clear()
        if not PARENT_DEATH:
            log.warning("no setpriv: ffmpeg %s would outlive a killed relay", self.name)
        self.process = await asyncio.create_subprocess_exec(
            *PARENT_DEATH,
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own process group: killed as a whole
        )
        self.started_at = time.monotonic()
        self._reader = asyncio.create_task(self._read_stderr(self.process))

    async def _read_stderr(self, process: asyncio.subprocess.Process) -> None:
        assert process.stderr is not None
        while line := await process.stderr.readline():
            self.stderr.append(redact_text(line.decode(errors="replace").rstrip()))

    async def wait(self) -> int:
        assert self.process is not None
        code = await self.process.wait()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        return code

    async def stop(self, grace_s: float = 3.0) -> None:
        """SIGTERM the group, wait `grace_s`, then SIGKILL it; always reaps."""
        process = self.process
        if process is None or process.returncode is not None:
            return
        _signal_group(process.pid, signal.SIGTERM)
        try:
            async with asyncio.timeout(grace_s):
                await process.wait()
        except TimeoutError:
            _signal_group(process.pid, signal.SIGKILL)
            await process.wait()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    def dump(self, reason: str) -> None:
        """Log why it ended, with what it said last (credentials already scrubbed)."""
        tail = "\n  ".join(list(self.stderr)[-20:]) or "(nothing on stderr)"
        log.warning("ffmpeg %s %s; last output:\n  %s", self.name, reason, tail)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


class Pacing:
    """How long to wait before the next start of something that keeps failing."""

    def __init__(self, delays: Sequence[float] = RESTART_DELAYS_S) -> None:
        self.delays = tuple(delays)
        self.failures = 0

    def failed(self, ran_for_s: float) -> float:
        """Record a failure after a run of `ran_for_s`; returns the pause to take."""
        if ran_for_s >= HEALTHY_RUN_S:
            self.failures = 0
        delay = self.delays[min(self.failures, len(self.delays) - 1)]
        self.failures += 1
        return delay

    def succeeded(self) -> None:
        self.failures = 0

    @property
    def crash_looping(self) -> bool:
        return self.failures >= len(self.delays)
