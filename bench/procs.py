"""Process helpers shared by the benchmarks and the test suite: free ports, waiting
for a server, process trees and their memory, a private Mosquitto."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def descendants(pid: int) -> set[int]:
    """Every process below `pid` (children, grandchildren…)."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        current = todo.pop()
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                kids = {int(k) for k in (task / "children").read_text().split()}
            except OSError:
                continue
            found |= kids
            todo += kids
    return found


def rss_bytes(pid: int) -> int:
    """Resident set size of one process (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time one process has used so far (0 if it is gone)."""
    try:
        # The command name (field 2) may hold spaces: count fields after its ")".
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine since boot, from /proc/stat."""
    ticks = [int(t) for t in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle + iowait
    return sum(ticks) - idle, sum(ticks)


def machine_busy(since: tuple[int, int]) -> float:
    """Share of the machine's CPU (all cores) busy since `machine_cpu()` returned `since`."""
    busy, total = machine_cpu()
    return (busy - since[0]) / max(1, total - since[1])


def command_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def tree_rss(pid: int, exclude: Sequence[str] = ()) -> int:
    """RSS of a process and its descendants, leaving out commands named in `exclude`."""
    pids = {pid} | descendants(pid)
    return sum(rss_bytes(p) for p in pids if command_name(p) not in exclude)


def start_python(
    args: Sequence[str], env: dict[str, str], log: Path | None = None
) -> subprocess.Popen[bytes]:
    """Run this Python with `args`; its output goes to `log` (appended) or nowhere."""
    if log is None:
        return subprocess.Popen(
            [sys.executable, *args],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, *args], env={**os.environ, **env}, stdout=out, stderr=out
        )


def wait_port(
    port: int, timeout: float = 10, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Wait until something listens on 127.0.0.1:`port` (fail early if `process` exits)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with status {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def start_mosquitto(folder: Path, port: int, extra_config: str = "") -> subprocess.Popen[bytes]:
    """A private, anonymous, loopback-only Mosquitto without persistence, configured
    and logging in `folder`; returns once it listens."""
    folder.mkdir(parents=True, exist_ok=True)
    conf = folder / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\n"
        "allow_anonymous true\n"
        "max_queued_messages 100000\n"
        "max_inflight_messages 100\n"
        "set_tcp_nodelay true\n"
        f"{extra_config}\n"
    )
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"  # sbin is often off PATH
    with (folder / "mosquitto.log").open("ab") as log:
        process = subprocess.Popen([binary, "-c", str(conf)], stdout=log, stderr=log)
    try:
        wait_port(port, process=process)
    except BaseException:
        stop(process)
        raise
    return process


def wait_http(url: str, timeout: float = 60) -> bytes:
    """GET `url` until it answers 2xx or `timeout` passes; return the body."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310  (loopback)
                body: bytes = response.read()
                return body
        except OSError as e:
            last = e
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout}s: {last}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate, wait, and kill if it does not go within 20 s."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit (main thread, default handler only), so `with`
    blocks and `finally` clauses still stop processes and remove temp dirs."""

    def leave(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    main = threading.current_thread() is threading.main_thread()
    if main and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, leave)
