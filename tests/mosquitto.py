"""A real Mosquitto broker for tests, on a free port, started and stopped by fixtures."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.procs import free_port
from tests.helpers import require_binary


@dataclass
class Mosquitto:
    """One broker process; `stop()` and `start()` again keep its port and its
    persistence file, like a broker restarted by its service manager."""

    folder: Path
    port: int = field(default_factory=free_port)
    extra_config: str = ""
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def config(self) -> str:
        # Run as root, Mosquitto drops to the `mosquitto` user, which cannot write into
        # pytest's private temp folders; tests keep it as whoever started it.
        user = "user root\n" if os.geteuid() == 0 else ""
        return (
            user + f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {self.folder}/\n"
            "max_queued_messages 100000\n"
            "max_inflight_messages 100\n"
            "set_tcp_nodelay true\n"
            f"{self.extra_config}\n"
        )

    def start(self) -> Mosquitto:
        binary = require_binary("mosquitto")
        self.folder.mkdir(parents=True, exist_ok=True)
        conf = self.folder / "mosquitto.conf"
        conf.write_text(self.config())
        log = (self.folder / "mosquitto.log").open("ab")
        self.process = subprocess.Popen([binary, "-c", str(conf)], stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"mosquitto exited: {(self.folder / 'mosquitto.log').read_text()}"
                )
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("mosquitto did not start listening")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
