"""Property-based run over the staff API's own OpenAPI document (schemathesis): no
input it can generate makes the API answer 500, or answer outside what it documents.

The application runs for real on a free port in a thread of its own, because
schemathesis makes blocking calls from the test."""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

import stb_portal.app
from stb_portal.api.views import api
from tests.stb_portal.staff import demo_password
from xueliang.alarms import RaiseRequest
from xueliang.config import Settings
from xueliang.signing import load_secret_key
from xueliang.web import ALARMS, create_app

T = TypeVar("T")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


class LiveServer:
    """The application on 127.0.0.1:<free port>, on a thread with its own loop."""

    def __init__(self, app: web.Application) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
        self.app = app
        self.url = ""

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    def start(self) -> None:
        self._thread.start()
        self.run(self._runner.setup())
        self.run(web.TCPSite(self._runner, "127.0.0.1", 0).start())
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    def stop(self) -> None:
        try:
            self.run(self._runner.cleanup())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=15)
            self._loop.close()


@pytest.fixture(scope="module")
def data_dir(_demo_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("schema") / "var"
    shutil.copytree(_demo_template, target)
    return target


@pytest.fixture(scope="module")
def live(data_dir: Path) -> Iterator[LiveServer]:
    app = create_app(
        Settings.model_validate({"data_dir": str(data_dir)}), load_secret_key(data_dir)
    )
    stb_portal.app.setup(app)
    server = LiveServer(app)
    server.start()
    requests_ = [RaiseRequest(source="tv", kind="fire", household="qilong-001"),
                 RaiseRequest(source="button", kind="panic", device="not-registered")]  # fmt: skip
    server.run(app[ALARMS].raise_many(requests_))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


@pytest.fixture(scope="module")
def auth(live: LiveServer, http: requests.Session, data_dir: Path) -> dict[str, str]:
    credentials = {
        "username": "xinjin-centre",
        "password": demo_password(data_dir, "xinjin-centre"),
    }
    response = http.post(f"{live.url}/api/v1/session", json=credentials, timeout=10)
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['token']}"}


def test_the_served_document_is_the_tested_one(live: LiveServer, http: requests.Session) -> None:
    served = http.get(f"{live.url}/api/v1/openapi.json", timeout=10).json()
    assert served == api.document()


# Built from the same registry the application serves; one test per operation.
schema = (
    schemathesis.openapi.from_dict(api.document())
    .exclude(path="/events")  # an endless stream: tested in test_api.py
    .exclude(method="DELETE", path="/session")  # would sign the run itself out
)


@schema.parametrize()
@settings(
    max_examples=25,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_api_answers_as_documented(
    case: schemathesis.Case[Any], live: LiveServer, http: requests.Session, auth: dict[str, str]
) -> None:
    case.call_and_validate(
        base_url=f"{live.url}/api/v1", session=http, headers=auth, checks=CHECKS, timeout=10
    )
