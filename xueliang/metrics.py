"""Prometheus metrics: one registry per application, so tests and several apps in one
process never share counters."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

from xueliang import __version__


class Metrics:
    """The registry plus the metrics every process has; parts add their own to it."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        Gauge(
            "xl_build_info", "Version of this process.", ["version"], registry=self.registry
        ).labels(__version__).set(1)
        self.http_requests = Counter(
            "xl_http_requests",
            "HTTP requests served, by route name and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.http_seconds = Histogram(
            "xl_http_request_seconds",
            "Time to answer an HTTP request (until the handler returns).",
            ["route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
        )
        self.part_up = Gauge(
            "xl_part_up",
            "1 when a part of this process is healthy, 0 when it is down.",
            ["part"],
            registry=self.registry,
        )
