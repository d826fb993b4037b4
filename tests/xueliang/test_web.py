"""The base application every process serves: health, metrics, and errors that show
no internals."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pytest_aiohttp import AiohttpClient

from xueliang.config import load_settings
from xueliang.errors import InvalidInput, NotFound
from xueliang.metrics import RequestStats
from xueliang.web import PartHealth, add_health_check, create_app


def make_app(tmp_path: Path) -> web.Application:
    settings = load_settings({"XL_DATA_DIR": str(tmp_path / "var")})
    app = create_app(settings, b"k" * 32)

    async def not_found(_: web.Request) -> web.Response:
        raise NotFound("household", "h-9")

    async def invalid(_: web.Request) -> web.Response:
        raise InvalidInput("name", "must not be empty")

    async def crash(_: web.Request) -> web.Response:
        raise RuntimeError("secret internals /srv/xl/db password=hunter2")

    app.router.add_get("/t/not-found", not_found, name="t_not_found")
    app.router.add_get("/t/invalid", invalid, name="t_invalid")
    app.router.add_get("/t/crash", crash, name="t_crash")
    return app


Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def client(aiohttp_client: AiohttpClient, tmp_path: Path) -> Client:
    return await aiohttp_client(make_app(tmp_path))


async def test_healthz_reports_each_part(client: Client) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "ok"
    assert body["parts"]["database"] == {"status": "ok", "backend": "sqlite"}


async def test_a_down_part_makes_health_503(
    client: Client,
) -> None:
    """A load balancer must stop sending households to a process that cannot serve them."""

    async def broken() -> PartHealth:
        return PartHealth("down", {"error": "no broker"})

    add_health_check(client.app, "mqtt", broken)
    response = await client.get("/healthz")
    assert response.status == 503
    assert (await response.json())["parts"]["mqtt"] == {"status": "down", "error": "no broker"}


async def test_metrics_count_routes_not_paths(
    client: Client,
) -> None:
    """A scanner trying thousands of URLs must not create thousands of time series."""
    for path in ("/healthz", "/nope/1", "/nope/2", "/../etc/passwd"):
        await client.get(path)
    response = await client.get("/metrics")
    assert response.headers["Content-Type"].startswith("text/plain")
    text = await response.text()
    assert 'xl_http_requests_total{method="GET",route="healthz",status="200"} 1.0' in text
    assert 'route="unmatched",status="404"} 3.0' in text
    assert "nope" not in text
    assert 'xl_part_up{part="database"} 1.0' in text


async def test_metrics_fold_made_up_methods_and_time_each_route(client: Client) -> None:
    """Verbs beyond the usual ones (the HTTP parser refuses made-up ones before any
    route) must not create a series each; every answer, errors included, is counted by
    its status and timed under its route."""
    for verb in ("PROPFIND", "PURGE", "MKCOL", "GET"):
        await client.request(verb, "/healthz")
    await client.get("/t/not-found")
    await client.get("/t/crash")
    families = {
        family.name: family
        for family in text_string_to_metric_families(await (await client.get("/metrics")).text())
    }
    counted = {
        (s.labels["route"], s.labels["method"], s.labels["status"]): s.value
        for s in families["xl_http_requests"].samples
        if s.name == "xl_http_requests_total"
    }
    assert counted[("unmatched", "other", "405")] == 3
    assert counted[("healthz", "GET", "200")] == 1
    assert counted[("t_not_found", "GET", "404")] == 1
    assert counted[("t_crash", "GET", "500")] == 1
    assert {method for _, method, _ in counted} == {"GET", "other"}
    timed = {
        (s.name.removeprefix("xl_http_request_seconds"), s.labels.get("le")): s.value
        for s in families["xl_http_request_seconds"].samples
        if s.labels["route"] == "healthz"
    }
    assert timed[("_count", None)] == timed[("_bucket", "+Inf")] == 1
    assert 0 < timed[("_sum", None)] < 10
    buckets = [v for (kind, le), v in timed.items() if kind == "_bucket"]
    assert buckets == sorted(buckets)  # cumulative


def test_request_stats_buckets_are_inclusive_and_cumulative() -> None:
    stats = RequestStats(buckets=(0.01, 0.1))
    for seconds in (0.005, 0.01, 0.05, 0.1, 3.0):
        stats.observe("tv_home", "GET", 200, seconds)
    (requests, seconds_family) = stats.collect()
    assert [(s.labels, s.value) for s in requests.samples] == [
        ({"route": "tv_home", "method": "GET", "status": "200"}, 5)
    ]
    by_le = {s.labels["le"]: s.value for s in seconds_family.samples if "le" in s.labels}
    assert by_le == {"0.01": 2, "0.1": 4, "+Inf": 5}  # `le` includes its bound


async def test_domain_errors_map_to_statuses(
    client: Client,
) -> None:
    response = await client.get("/t/not-found")
    assert response.status == 404
    assert await response.json() == {"error": "household 'h-9' not found"}
    assert (await client.get("/t/invalid")).status == 400


async def test_crash_hides_internals(client: Client, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        response = await client.get("/t/crash")
    assert response.status == 500
    assert await response.json() == {"error": "internal error"}
    assert "RuntimeError" in caplog.text  # the operator still gets the traceback
