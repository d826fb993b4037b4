"""The operator commands of the contract, with their `--json` answers."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Cli
from tests.helpers import xueliang
from xueliang.demo import HOUSEHOLDS, STAFF


def test_seed_demo_is_idempotent_with_stable_ids(cli: Cli) -> None:
    """Docs and tests rely on the contract's demo ids; seeding twice changes nothing."""
    first = cli("seed-demo", "--json").json
    second = cli("seed-demo", "--json").json
    assert first == second
    assert first["county"] == "xinjin"
    assert [t["id"] for t in first["towns"]] == ["puxing", "anxi", "yongshang"]
    assert {(v["id"], v["town"]) for v in first["villages"]} == {
        ("qilong", "puxing"),
        ("anxicun", "anxi"),
        ("fenghuo", "yongshang"),
    }
    assert len(first["households"]) == len(HOUSEHOLDS)
    assert all(h["pair_url"].startswith("/tv/pair/") for h in first["households"])
    assert all(d["password"] and d["username"] == d["id"] for d in first["devices"])
    assert {s["username"] for s in first["staff"]} == {s[0] for s in STAFF}
    assert all(s["password"] for s in first["staff"])
    assert first["cameras"] == [{"id": "qilong-square", "village": "qilong"}]


def test_seed_demo_text_shows_links_and_console(cli: Cli) -> None:
    out = cli("seed-demo").out
    assert "http://localhost:8080/tv/pair/" in out
    assert "http://localhost:8080/centre/" in out


def test_reissued_demo_link_is_not_reprinted(cli: Cli) -> None:
    """After an operator re-issues a link, seeding again must not print the dead one."""
    cli("household", "reissue", "--id", "qilong-001", "--json")
    county = cli("seed-demo", "--json").json
    link = {h["id"]: h["pair_url"] for h in county["households"]}
    assert link["qilong-001"] is None and link["qilong-002"] is not None


def test_household_and_device_add(cli: Cli) -> None:
    added = cli(
        "household", "add", "--village", "qilong", "--name", "周家", "--id", "qilong-100",
        "--address", "骑龙社区9组1号", "--phone", "028-8000-0999", "--json",
    )  # fmt: skip
    assert added.code == 0, added.err
    assert added.json["id"] == "qilong-100"
    assert added.json["pair_url"].startswith("/tv/pair/")
    device = cli("device", "add", "--household", "qilong-100", "--json")
    assert device.code == 0
    assert set(device.json) == {"id", "household", "username", "password"}
    assert device.json["username"] == device.json["id"]
    named = cli("device", "add", "--household", "qilong-100", "--id", "btn-x1", "--json")
    assert named.json["id"] == "btn-x1"


def test_refusals_exit_1_with_a_reason(cli: Cli) -> None:
    unknown = cli("device", "add", "--household", "nobody", "--json")
    assert unknown.code == 1 and "household 'nobody' not found" in unknown.err
    dup = cli("household", "add", "--village", "qilong", "--name", "x", "--id", "qilong-001")
    assert dup.code == 1 and "already exists" in dup.err
    bad = cli("household", "add", "--village", "qilong", "--name", "x", "--id", "a/b")
    assert bad.code == 1 and "household:" in bad.err


def test_staff_add_reads_password_from_stdin(cli: Cli) -> None:
    ok = cli(
        "staff", "add", "--username", "puxing-2", "--role", "town", "--scope", "puxing",
        "--password-stdin", "--json", stdin="a long passphrase\n",
    )  # fmt: skip
    assert ok.code == 0, ok.err
    assert ok.json == {"username": "puxing-2", "role": "town", "scope": "puxing"}
    weak = cli(
        "staff", "add", "--username", "puxing-3", "--role", "town", "--scope", "puxing",
        "--password-stdin", stdin="short\n",
    )  # fmt: skip
    assert weak.code == 1 and "password" in weak.err
    wrong_scope = cli(
        "staff", "add", "--username", "puxing-4", "--role", "county", "--scope", "puxing",
        "--password-stdin", stdin="a long passphrase\n",
    )  # fmt: skip
    assert wrong_scope.code == 1 and "county 'puxing' not found" in wrong_scope.err


def test_camera_add_hides_credentials(cli: Cli) -> None:
    added = cli(
        "camera", "add", "--id", "gate", "--name", "村口", "--village", "anxicun",
        "--url", "rtsp://admin:hunter2@192.0.2.7/live", "--mask", "0.1,0.1,0.2,0.2",
        "--mask", "0.5,0.5,0.5,0.5,blur", "--json",
    )  # fmt: skip
    assert added.code == 0, added.err
    assert "hunter2" not in added.out + added.err
    assert added.json["url"] == "rtsp://***@192.0.2.7/live"
    assert [m["fill"] for m in added.json["masks"]] == ["black", "blur"]
    bad = cli("camera", "add", "--id", "c2", "--name", "x", "--village", "anxicun",
              "--url", "testsrc://", "--mask", "0.9,0.9,0.5,0.5")  # fmt: skip
    assert bad.code == 1 and "outside the frame" in bad.err


def test_device_import_command(cli: Cli, tmp_path: Path) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_text(
        "device,household,village,household_name,address,phone\n"
        "btn-n1,fenghuo-100,fenghuo,孙家,,\n"
        "btn-n2,fenghuo-101,nowhere,钱家,,\n",
        encoding="utf-8",
    )
    result = cli("device", "import", str(roster), "--json")
    assert result.code == 1  # one line needs fixing
    report = result.json
    assert report["imported"] == 1
    assert report["errors"] == [{"line": 3, "reason": "village: unknown village nowhere"}]
    assert [d["id"] for d in report["devices"]] == ["btn-n1"]
    assert cli("device", "import", str(tmp_path / "absent.csv")).code == 1


def test_db_commands(cli: Cli) -> None:
    status = cli("db", "status", "--json").json
    assert status["current"] == status["head"]
    assert cli("db", "upgrade", "--json").json == {"revision": status["head"]}


def test_manual_upgrades_refuse_an_old_schema(tmp_path: Path) -> None:
    """With auto_upgrade off, commands stop with a pointer to `xueliang db upgrade`."""
    config = tmp_path / "x.toml"
    config.write_text("[database]\nauto_upgrade = false\n", encoding="utf-8")
    env = {"XL_CONFIG": str(config), "XL_DATA_DIR": str(tmp_path / "data")}
    refused = xueliang("seed-demo", env=env)
    assert refused.returncode == 2 and "xueliang db upgrade" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert xueliang("db", "upgrade", env=env).returncode == 0


def test_household_pair_code_refuses_bad_codes(cli: Cli) -> None:
    """Staff type the code a villager reads out: typos get a clear answer."""
    for code, reason in (("12345", "6 digits"), ("abcdef", "6 digits"), ("000000", "not found")):
        result = cli("household", "pair-code", "--code", code, "--household", "qilong-001")
        assert result.code == 1
        assert reason in result.err
    unknown = cli("household", "pair-code", "--code", "123456", "--household", "nobody")
    assert "household 'nobody' not found" in unknown.err
