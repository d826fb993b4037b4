"""The base application every process serves: health, metrics, and errors that show
no internals."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from xueliang.config import load_settings
from xueliang.errors import InvalidInput, NotFound
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
