"""Pacing, percentiles and the printed table of the benchmarks."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path


def paced(count: int, rate: float | None) -> Iterator[int]:
    """Yield 0..count-1, the i-th at start + i/rate (an absolute schedule: no drift)."""
    start = time.perf_counter()
    for i in range(count):
        if rate is not None:
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        yield i


def fsync_latencies(folder: Path, count: int = 200) -> list[float]:
    """Seconds for a small append + fsync in `folder` (the floor of a durable commit)."""
    timings = []
    with (folder / "fsync.probe").open("ab") as f:
        for _ in range(count):
            start = time.perf_counter()
            f.write(b"x" * 200)
            f.flush()
            os.fsync(f.fileno())
            timings.append(time.perf_counter() - start)
    return timings


@dataclass(frozen=True, slots=True)
class Stats:
    count: int
    p50: float
    p99: float
    max: float

    @classmethod
    def of(cls, samples: Sequence[float]) -> Stats:
        ordered = sorted(samples)
        if not ordered:
            return cls(0, math.nan, math.nan, math.nan)
        return cls(len(ordered), rank(ordered, 0.50), rank(ordered, 0.99), ordered[-1])


def rank(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of sorted values."""
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the table. `issue` and `target` are the aims, both upper bounds
    unless `higher_is_better`; `value` and `baseline` share `unit`."""

    figure: str
    value: float
    unit: str = "ms"
    baseline: float | None = None
    issue: float | None = None
    target: float | None = None
    higher_is_better: bool = False

    def verdict(self) -> str:
        def meets(limit: float) -> bool:
            return self.value >= limit if self.higher_is_better else self.value <= limit

        aims = [a for a in (self.issue, self.target) if a is not None]
        return " / ".join("ok" if meets(a) else "MISSED" for a in aims)

    def cells(self) -> list[str]:
        sign = "≥" if self.higher_is_better else "≤"
        aims = " / ".join(
            f"{sign} {_num(a)} {self.unit}".rstrip()
            for a in (self.issue, self.target)
            if a is not None
        )
        ratio = ""
        if self.baseline:
            ratio = f"{self.value / self.baseline:.2f}x"
        baseline = "" if self.baseline is None else f"{_num(self.baseline)} {self.unit}"
        return [
            self.figure,
            f"{_num(self.value)} {self.unit}",
            baseline,
            ratio,
            aims,
            self.verdict(),
        ]


def _num(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    if value == int(value):
        return f"{value:.0f}"
    return f"{value:.2f}" if abs(value) < 100 else f"{value:.0f}"


def print_table(title: str, rows: Sequence[Row], notes: Sequence[str] = ()) -> None:
    header = ["figure", "value", "baseline", "ratio", "aim issue / target", "verdict"]
    table = [header, *(row.cells() for row in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    print(title)
    for line in table:
        print("  " + "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))
    for note in notes:
        print(f"  {note}")


def ms(seconds: float) -> float:
    return seconds * 1000
