"""Prometheus metrics: one registry per application, so tests and several apps in one
process never share counters."""

from __future__ import annotations

import bisect
from collections.abc import Iterable

from prometheus_client import (
    CollectorRegistry,
    Gauge,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from xueliang import __version__

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)


class Metrics:
    """The registry plus the metrics every process has; parts add their own to it."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        Gauge(
            "xl_build_info", "Version of this process.", ["version"], registry=self.registry
        ).labels(__version__).set(1)
        self.requests = RequestStats()
        self.registry.register(self.requests)
        self.part_up = Gauge(
            "xl_part_up",
            "1 when a part of this process is healthy, 0 when it is down.",
            ["part"],
            registry=self.registry,
        )


class RequestStats(Collector):
    """`xl_http_requests_total` by route, method and status, and the histogram
    `xl_http_request_seconds` by route.

    Every request of the process passes here, so it keeps plain numbers and makes the
    Prometheus families only when scraped: a labelled prometheus_client child costs
    ~3 µs per request (label validation, a lock per increment), this ~0.5 µs. Only the
    event loop's thread calls `observe` and the scrape (`/metrics` is a handler on the
    same loop), so nothing needs a lock.

    The series are bounded by construction: routes are names, statuses come from the
    code, and a method outside HTTP's usual ones is counted as "other" (a client cannot
    add a series per made-up verb)."""

    def __init__(self, buckets: tuple[float, ...] = SECONDS_BUCKETS) -> None:
        self.buckets = buckets
        self._counts: dict[tuple[str, str, int], int] = {}
        # Per route: the count in each bucket (not cumulative; the last is +Inf), sum.
        self._times: dict[str, tuple[list[int], list[float]]] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        count = self._counts.get(key)
        if count is None and method not in METHODS:
            key = (route, "other", status)
            count = self._counts.get(key)
        self._counts[key] = (count or 0) + 1
        times = self._times.get(route)
        if times is None:
            times = self._times[route] = ([0] * (len(self.buckets) + 1), [0.0])
        times[0][bisect.bisect_left(self.buckets, seconds)] += 1
        times[1][0] += seconds

    def describe(self) -> Iterable[Metric]:
        return [
            CounterMetricFamily("xl_http_requests", _REQUESTS_HELP, labels=_REQUEST_LABELS),
            HistogramMetricFamily("xl_http_request_seconds", _SECONDS_HELP, labels=["route"]),
        ]

    def collect(self) -> Iterable[Metric]:
        requests = CounterMetricFamily("xl_http_requests", _REQUESTS_HELP, labels=_REQUEST_LABELS)
        for (route, method, status), count in self._counts.items():
            requests.add_metric([route, method, str(status)], count)
        seconds = HistogramMetricFamily("xl_http_request_seconds", _SECONDS_HELP, labels=["route"])
        bounds = [*map(_bound, self.buckets), "+Inf"]
        for route, (counts, total) in self._times.items():
            cumulative, running = [], 0
            for bound, count in zip(bounds, counts, strict=True):
                running += count
                cumulative.append((bound, running))
            seconds.add_metric([route], cumulative, total[0])
        return [requests, seconds]


_REQUESTS_HELP = "HTTP requests served, by route name and status."
_REQUEST_LABELS = ["route", "method", "status"]
_SECONDS_HELP = "Time to answer an HTTP request (until the handler returns)."


def _bound(bucket: float) -> str:
    """A bucket's `le` as prometheus_client writes it ("0.001", "1.0", "10.0")."""
    return repr(float(bucket))
