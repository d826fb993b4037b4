"""The processes the alarm benchmarks measure: a private Mosquitto and `xueliang
bridge` on a fresh data dir with the demo county and registered devices (`Rig`), and
what the bridge reports about itself (/metrics, its log, its SQLite file).

Everything listens on and talks to 127.0.0.1 only. Set `BENCH_LOG_DIR` to keep the
bridge's and Mosquitto's logs; otherwise they go with the temp dir, after a summary."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from prometheus_client.parser import text_string_to_metric_families

from bench.figures import ms
from bench.mqtt_clients import Client
from bench.procs import (
    cpu_seconds,
    exit_on_sigterm,
    free_port,
    machine_busy,
    machine_cpu,
    start_mosquitto,
    start_python,
    stop,
)

VILLAGES = ("qilong", "anxicun", "fenghuo")  # the demo county's, one per town
STEP_TIMEOUT_S = 60.0


def device_ids(count: int, first: int = 1) -> list[str]:
    return [f"bench-{i:04d}" for i in range(first, first + count)]


class Rig:
    """Mosquitto, a data dir with the demo county plus `devices`, and the bridge, all
    stopped and removed on exit, whatever happened."""

    def __init__(self, name: str, devices: Sequence[str], mosquitto_config: str = "") -> None:
        self.name = name
        self.mosquitto_config = mosquitto_config
        self.devices = list(devices)
        self.mqtt_port = free_port()
        self.http_port = free_port()
        self.bridge: subprocess.Popen[bytes] | None = None
        self.log_notes: list[str] = []  # a summary of the bridge's log, once stopped
        self._stack = contextlib.ExitStack()
        self.folder = Path(self._stack.enter_context(tempfile.TemporaryDirectory(prefix="xl-")))
        self.data_dir = self.folder / "data"
        self.bridge_log = self.folder / "bridge.log"
        # Every setting that matters is explicit, so nothing from the caller's
        # environment (a PostgreSQL URL, a config file, a prefix) changes what is measured.
        self.env = {
            "XL_CONFIG": str(self.folder / "empty.toml"),
            "XL_DATA_DIR": str(self.data_dir),
            "XL_DATABASE_URL": f"sqlite:///{self.data_dir}/xueliang.db",
            "XL_MQTT_URL": f"mqtt://127.0.0.1:{self.mqtt_port}",
            "XL_HTTP_HOST": "127.0.0.1",
            "XL_HTTP_PORT": str(self.http_port),
            "XL_TOPIC_PREFIX": "xl",
        }

    def __enter__(self) -> Rig:
        exit_on_sigterm()
        try:
            self._start()
        except BaseException:
            self._close(failed=True)
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._close(failed=kind is not None)

    def _close(self, failed: bool) -> None:
        if failed:
            print(f"{self.name} failed; the bridge's log ends with:\n{self.log_tail()}")
        self._stack.close()
        if failed:
            print("\n".join(self.log_notes))

    def _start(self) -> None:
        self._stack.callback(self._report_logs)
        (self.folder / "empty.toml").write_text("")
        mosquitto = start_mosquitto(
            self.folder / "mosquitto", self.mqtt_port, self.mosquitto_config
        )
        self._stack.callback(stop, mosquitto)
        self._register()
        self.bridge = start_python(["-m", "xueliang", "bridge"], self.env, log=self.bridge_log)
        self._stack.callback(self.stop_bridge)
        self._wait_ready()

    def _xueliang(self, *args: str) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "xueliang", *args],
            env={**os.environ, **self.env},
            cwd=self.folder,  # so no stray ./xueliang.toml is read
            capture_output=True,
            timeout=STEP_TIMEOUT_S,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"xueliang {' '.join(args)}: {done.stderr.decode()[-2000:]}")

    def _register(self) -> None:
        self._xueliang("seed-demo", "--json")
        roster = self.folder / "devices.csv"
        lines = ["device,household,village,household_name,address,phone"]
        for index, device in enumerate(self.devices):
            lines.append(f"{device},{device}-h,{VILLAGES[index % 3]},户{index:04d},,")
        roster.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self._xueliang("device", "import", str(roster), "--json")

    def _wait_ready(self) -> None:
        """Healthz says connected, then the retained `online`: the bridge sends it right
        after its SUBSCRIBE on the same connection, so its subscriptions are in place."""
        bridge = self.bridge
        assert bridge is not None
        deadline = time.monotonic() + STEP_TIMEOUT_S
        while not self._health_connected():
            if bridge.poll() is not None:
                raise RuntimeError(f"the bridge exited with status {bridge.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError("the bridge did not connect to Mosquitto")
            time.sleep(0.1)
        online = threading.Event()

        def heard(_topic: str, payload: bytes, _at: float) -> None:
            if payload == b"online":
                online.set()

        with Client(self.mqtt_port, "bench-ready", heard, [("xl/bridge/status", 1)]):
            if not online.wait(10):
                raise TimeoutError("the bridge did not announce itself online")

    def _health_connected(self) -> bool:
        try:
            body = self._get("/healthz")
        except urllib.error.HTTPError as e:  # 503 still carries the parts
            body = e.read()
        except OSError:
            return False
        parts = json.loads(body).get("parts", {})
        return bool(parts.get("bridge", {}).get("connected"))

    def _get(self, path: str) -> bytes:
        url = f"http://127.0.0.1:{self.http_port}{path}"
        with urllib.request.urlopen(url, timeout=5) as response:
            body: bytes = response.read()
            return body

    def metrics(self) -> dict[str, float]:
        """The bridge's /metrics samples, keyed `name{label=value,...}`."""
        text = self._get("/metrics").decode()
        samples: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
                samples[f"{s.name}{{{labels}}}"] = s.value
        return samples

    def bridge_cpu_s(self) -> float:
        return 0.0 if self.bridge is None else cpu_seconds(self.bridge.pid)

    def stop_bridge(self) -> None:
        if self.bridge is not None:
            stop(self.bridge)

    def count(self, sql: str) -> int:
        """One number from the bridge's SQLite file (stop the bridge first)."""
        with contextlib.closing(sqlite3.connect(self.data_dir / "xueliang.db")) as db:
            value: int = db.execute(sql).fetchone()[0]
            return value

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.bridge_log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def _report_logs(self) -> None:
        """A summary of the bridge's log (the evidence when something looks wrong)."""
        try:
            lines = self.bridge_log.read_text(errors="replace").splitlines()
        except OSError:
            lines = []
        notable = [
            line
            for line in lines
            if " WARNING " in line or " ERROR " in line or line.startswith("Traceback")
        ]
        self.log_notes = [
            f"bridge log: {len(lines)} lines, {len(notable)} warnings/errors/tracebacks"
        ]
        self.log_notes += [f"  {line[:160]}" for line in notable[:5]]
        keep = os.environ.get("BENCH_LOG_DIR")
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            logs = {"bridge": self.bridge_log, "mosquitto": self.folder / "mosquitto/mosquitto.log"}
            for what, source in logs.items():
                if source.exists():
                    shutil.copy(source, Path(keep) / f"{self.name}-{what}.log")


@dataclass(frozen=True, slots=True)
class Usage:
    """CPU used over a stretch of time: the bridge's in cores (1.0 = one core busy),
    the whole machine's as a share of all its cores (others' work included)."""

    seconds: float
    bridge: float
    machine: float

    def __str__(self) -> str:
        return f"bridge {self.bridge:.0%} of a core, machine {self.machine:.0%} busy"


class CpuMeter:
    """Started at creation; `read()` gives the usage since."""

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self._start = time.perf_counter()
        self._bridge = rig.bridge_cpu_s()
        self._machine = machine_cpu()

    def read(self) -> Usage:
        seconds = time.perf_counter() - self._start
        bridge = (self.rig.bridge_cpu_s() - self._bridge) / seconds
        return Usage(seconds, bridge, machine_busy(self._machine))


# --- what the bridge reports ---------------------------------------------------------


def rejected(samples: dict[str, float]) -> dict[str, float]:
    """The bridge's `xl_bridge_rejected` counters that are not zero, by reason."""
    prefix = "xl_bridge_rejected_total{reason="
    return {k[len(prefix) : -1]: v for k, v in samples.items() if k.startswith(prefix) and v}


def ingest_shares(samples: dict[str, float]) -> str:
    """The bridge's own view (`xl_alarm_ingest_seconds`: arrival → ack sent), as the
    share of alarms within a few bounds: what the broker hops do not explain."""
    count = samples.get("xl_alarm_ingest_seconds_count{}", 0.0)
    if not count:
        return "bridge ingest histogram: empty"
    shares = []
    for bound in (0.005, 0.01, 0.025, 0.05):
        within = samples.get(f"xl_alarm_ingest_seconds_bucket{{le={bound}}}", 0.0)
        shares.append(f"≤ {ms(bound):g} ms {within / count:.0%}")
    return f"bridge's own arrival → ack sent ({count:.0f} alarms): " + ", ".join(shares)
