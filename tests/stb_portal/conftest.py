"""The portal served by the real application (base app + portal + alarm service) on
a copy of the seeded demo county; no broker is needed for the pages themselves."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

import stb_portal.app
from xueliang.config import Settings
from xueliang.demo import HOUSEHOLDS
from xueliang.signing import derive, load_secret_key
from xueliang.web import create_app

Client = TestClient[web.Request, web.Application]

if TYPE_CHECKING:
    from tests.stb_portal.browser import Server


def demo_pair_path(data_dir: Path, household: str) -> str:
    """The demo household's pairing link (derived from the installation key)."""
    return "/tv/pair/" + derive(load_secret_key(data_dir), "demo-pair", household, length=43)


@pytest.fixture
def portal_app(demo_dir: Path) -> web.Application:
    settings = Settings.model_validate({"data_dir": str(demo_dir)})
    app = create_app(settings, load_secret_key(demo_dir))
    stb_portal.app.setup(app)
    return app


@pytest.fixture
async def tv(aiohttp_client: AiohttpClient, portal_app: web.Application) -> Client:
    """A box that has not been paired."""
    return await aiohttp_client(portal_app)


@pytest.fixture
async def paired(tv: Client, demo_dir: Path) -> Client:
    """The box of 王德明家 (qilong-001), paired through its link."""
    response = await tv.get(demo_pair_path(demo_dir, HOUSEHOLDS[0][0]), allow_redirects=False)
    assert response.status == 303
    return tv


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field in the form"
    return match.group(1)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`xueliang run --demo`, as a county runs it."""
    from tests.stb_portal.browser import run_demo  # needs Playwright: imported on use

    yield from run_demo(tmp_path_factory)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from tests.stb_portal.browser import launch_chromium

    yield from launch_chromium()
