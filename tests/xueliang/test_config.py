"""Configuration: one validated tree; every mistake is named by its field path."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from pydantic import BaseModel

from tests.helpers import REPO, xueliang
from xueliang.config import ENVIRONMENT, Settings, load_settings
from xueliang.errors import ConfigError


def problems(env: dict[str, str]) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as e:
        load_settings(env)
    return e.value.problems


def test_defaults_follow_the_contract() -> None:
    """An operator with no file and no variables gets the documented defaults."""
    s = load_settings({})
    assert (s.http.host, s.http.port) == ("0.0.0.0", 8080)
    assert s.mqtt.url is None and s.mqtt.embedded_port == 1883 and s.mqtt.topic_prefix == "xl"
    assert s.data_dir == Path("var")
    assert s.database_url == "sqlite:///var/xueliang.db"
    assert s.escalation.town_s == 90


def test_file_then_environment(tmp_path: Path) -> None:
    """The environment overrides the file, which overrides the defaults."""
    config = tmp_path / "site.toml"
    config.write_text(
        '[http]\nport = 9000\nhost = "127.0.0.1"\n[escalation]\ntown_s = 30\n', encoding="utf-8"
    )
    s = load_settings({"XL_CONFIG": str(config), "XL_HTTP_PORT": "9100", "XL_DATA_DIR": "/srv/xl"})
    assert (s.http.host, s.http.port, s.escalation.town_s) == ("127.0.0.1", 9100, 30)
    assert s.database_url == "sqlite:////srv/xl/xueliang.db"


def test_every_contract_variable_sets_its_field() -> None:
    env = {
        "XL_DATA_DIR": "/data",
        "XL_DATABASE_URL": "postgresql://xl:pw@db:5432/xueliang",
        "XL_MQTT_URL": "mqtts://bridge:pw@broker.example:8883",
        "XL_HTTP_HOST": "127.0.0.1",
        "XL_HTTP_PORT": "8081",
        "XL_MQTT_PORT": "1884",
        "XL_TOPIC_PREFIX": "county7",
    }
    assert set(env) == set(ENVIRONMENT)
    s = load_settings(env)
    assert s.database_url == "postgresql://xl:pw@db:5432/xueliang"
    assert s.mqtt.url is not None and s.mqtt.url.host == "broker.example"
    assert (s.http.port, s.mqtt.embedded_port, s.mqtt.topic_prefix) == (8081, 1884, "county7")


def test_default_file_in_working_directory(tmp_path: Path) -> None:
    (tmp_path / "xueliang.toml").write_text("log_level = 'debug'\n", encoding="utf-8")
    assert load_settings({}).log_level == "debug"


def test_unknown_key_is_named(tmp_path: Path) -> None:
    """A misspelt setting must not be silently ignored."""
    config = tmp_path / "x.toml"
    config.write_text("[http]\nprot = 8080\n", encoding="utf-8")
    [(path, message)] = problems({"XL_CONFIG": str(config)})
    assert path == "http.prot"
    assert "unknown setting" in message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("70000", "less than or equal to 65535"),
        ("0", "greater than or equal to 1"),
        ("web", "integer"),
    ],
)
def test_bad_port_names_the_variable(value: str, expected: str) -> None:
    [(path, message)] = problems({"XL_HTTP_PORT": value})
    assert path == "http.port (from XL_HTTP_PORT)"
    assert expected in message and repr(value) in message


@pytest.mark.parametrize(
    ("variable", "value", "field"),
    [
        ("XL_DATABASE_URL", "mysql://u@h/db", "database.url"),
        ("XL_DATABASE_URL", "sqlite://", "database.url"),
        ("XL_DATABASE_URL", "not a url", "database.url"),
        ("XL_MQTT_URL", "http://broker:1883", "mqtt.url"),
        ("XL_MQTT_URL", "mqtt://", "mqtt.url"),
        ("XL_TOPIC_PREFIX", "xl/#", "mqtt.topic_prefix"),
        ("XL_TOPIC_PREFIX", "", "mqtt.topic_prefix"),
    ],
)
def test_bad_urls_and_prefix(variable: str, value: str, field: str) -> None:
    [(path, _)] = problems({variable: value})
    assert path == f"{field} (from {variable})"


def test_passwords_never_echoed() -> None:
    """A rejected URL is shown without its credentials (config errors end up in logs)."""
    [(_, message)] = problems({"XL_MQTT_URL": "http://bridge:s3cret-pw@broker:1883"})
    assert "s3cret-pw" not in message


def test_broken_toml_and_missing_file(tmp_path: Path) -> None:
    config = tmp_path / "x.toml"
    config.write_text("[http\nport = 1\n", encoding="utf-8")
    [(path, message)] = problems({"XL_CONFIG": str(config)})
    assert path == "(file)" and "line 1" in message
    [(path, message)] = problems({"XL_CONFIG": str(tmp_path / "absent.toml")})
    assert path == "XL_CONFIG" and "does not exist" in message


def test_wrong_section_type(tmp_path: Path) -> None:
    config = tmp_path / "x.toml"
    config.write_text("http = 3\n", encoding="utf-8")
    [(path, _)] = problems({"XL_CONFIG": str(config), "XL_HTTP_PORT": "80"})
    assert path == "http"


def test_unknown_variable_is_warned(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        load_settings({"XL_HTTP_PROT": "1"})
    assert "XL_HTTP_PROT" in caplog.text


def test_cli_reports_bad_config_without_traceback(tmp_path: Path) -> None:
    """The operator sees each bad field and exit status 2, never a Python traceback."""
    config = tmp_path / "x.toml"
    config.write_text("[mqtt]\nembedded_port = 99999\ncolour = 'red'\n", encoding="utf-8")
    result = xueliang("run", "--check-config", env={"XL_CONFIG": str(config)})
    assert result.returncode == 2
    assert "mqtt.embedded_port" in result.stderr and "mqtt.colour" in result.stderr
    assert "Traceback" not in result.stderr
    ok = xueliang("run", "--check-config", env={"XL_DATA_DIR": str(tmp_path)})
    assert ok.returncode == 0, ok.stderr
    assert "valid" in ok.stdout


def _fields(model: type[BaseModel], prefix: str = "") -> dict[str, str | None]:
    """Every leaf setting's dotted path and its description."""
    found: dict[str, str | None] = {}
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found |= _fields(annotation, f"{prefix}{name}.")
        else:
            found[prefix + name] = info.description
    return found


def test_every_setting_is_described_and_documented() -> None:
    """The README's configuration table is the operator's manual: it must not drift."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for path, description in _fields(Settings).items():
        assert description, f"{path} has no description"
        assert f"| `{path}` |" in readme, f"README does not document {path}"
    for variable in ENVIRONMENT:
        assert f"`{variable}`" in readme, f"README does not document {variable}"
