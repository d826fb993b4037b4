"""The shape of the project: import rules, what the wheel ships, deployment files,
and documentation that must not drift from the code."""

from __future__ import annotations

import ast
import re
import zipfile
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO
from xueliang.config import ENVIRONMENT
from xueliang.resources import templates_dir

PARTS = ("stb_portal", "video_relay", "mqtt_bridge")
PACKAGES = ("xueliang", *PARTS)


def imports(path: Path) -> set[str]:
    """Top-level module names imported by a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def sources(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


@pytest.mark.parametrize("package", PACKAGES)
def test_import_rules(package: str) -> None:
    """Parts import the core, never each other; the core imports no part except in
    its CLI entrance, which wires them; only mqtt_bridge speaks MQTT."""
    for path in sources(package):
        rel = path.relative_to(REPO)
        roots = {name.split(".")[0] for name in imports(path)}
        forbidden = set(PARTS) - {package}
        if package == "xueliang" and rel.parts[:2] == ("xueliang", "cli"):
            forbidden = set()
        assert not roots & forbidden, f"{rel} imports {roots & forbidden}"
        if package != "mqtt_bridge":
            assert not roots & {"paho", "amqtt"}, f"{rel} talks MQTT outside mqtt_bridge"


def test_wheel_ships_templates_and_migrations(tmp_path: Path) -> None:
    """A non-editable install finds its templates and migrations."""
    from hatchling.builders.wheel import WheelBuilder

    wheel = Path(next(iter(WheelBuilder(str(REPO)).build(directory=str(tmp_path)))))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "xueliang/templates/README.md" in names
    assert "xueliang/storage/migrations/env.py" in names
    assert "xueliang/storage/migrations/script.py.mako" in names
    assert any(n.startswith("xueliang/storage/migrations/versions/0001") for n in names)
    assert {f"{p}/__init__.py" for p in PACKAGES} <= names
    assert not any(n.startswith("tests/") for n in names)


def test_templates_found_from_source() -> None:
    assert templates_dir() == REPO / "templates"


def readme() -> str:
    return (REPO / "README.md").read_text(encoding="utf-8")


def test_readme_keeps_the_two_commands_and_the_cli() -> None:
    text = readme()
    assert "make run" in text and "make test" in text
    for command in (
        "run", "portal", "relay", "bridge", "db upgrade", "seed-demo", "household add",
        "device add", "device import", "staff add", "camera add",
    ):  # fmt: skip
        assert f"xueliang {command}" in text or f"| {command}" in text, command


def test_dockerfile_installs_as_the_readme_says() -> None:
    """The image is built with the very command the README gives operators."""
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    [docker_install] = re.findall(r"^RUN (pip install .*)$", dockerfile, re.MULTILINE)
    assert f"\n{docker_install}\n" in readme()
    assert re.search(r"^USER (?!root)\w+", dockerfile, re.MULTILINE), "runs as non-root"
    assert re.search(r"^HEALTHCHECK .*\n?.*/healthz", dockerfile, re.MULTILINE)
    copied = set(re.findall(r"^COPY (\S+) ", dockerfile, re.MULTILINE))
    assert {*PACKAGES, "templates", "pyproject.toml"} <= copied


def test_compose_file_is_complete() -> None:
    compose = yaml.safe_load((REPO / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert {"xueliang", "mosquitto", "postgres"} <= set(services)
    app = services["xueliang"]
    assert set(app["environment"]) <= set(ENVIRONMENT)
    assert app["environment"]["XL_DATABASE_URL"].startswith("postgresql://")
    assert app["environment"]["XL_MQTT_URL"].startswith("mqtt://")
    assert set(app["depends_on"]) == {"postgres", "mosquitto"}
    named = {v.split(":")[0] for s in services.values() for v in s.get("volumes", [])}
    assert {"xueliang-data", "mosquitto-data", "postgres-data"} <= named & set(compose["volumes"])
    for mount in services["mosquitto"]["volumes"]:
        source = mount.split(":")[0]
        if source.startswith("./"):
            assert (REPO / source).is_dir(), f"{source} is mounted but missing"
    conf = (REPO / "deploy/mosquitto/mosquitto.conf").read_text(encoding="utf-8")
    assert "allow_anonymous false" in conf


def test_changelog_has_an_unreleased_section() -> None:
    text = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "## [Unreleased]" in text
