"""The `xueliang` command: the entrance that wires the parts together.

Every command validates the configuration first; a bad one exits 2 with the field
path, a refused request exits 1 with the reason, and `--json` prints what scripts read.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from xueliang import __version__, cameras
from xueliang.cli import commands
from xueliang.cli.output import EXIT_CONFIG, EXIT_REFUSED
from xueliang.config import load_settings
from xueliang.errors import ConfigError, SchemaOutdated, XueliangError

log = logging.getLogger("xueliang")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as e:
        print(f"xueliang: {e}", file=sys.stderr)
        return EXIT_CONFIG
    _configure_logging(settings.log_level)
    try:
        result: int = args.handler(args, settings)
        return result
    except XueliangError as e:
        print(f"xueliang: {e}", file=sys.stderr)
        return EXIT_CONFIG if isinstance(e, SchemaOutdated) else EXIT_REFUSED
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xueliang",
        description="Public-safety and community services on the cable-TV set-top box.",
    )
    parser.add_argument("--version", action="version", version=f"xueliang {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="everything in one process")
    run.add_argument("--demo", action="store_true", help="seed and print the demo county")
    run.add_argument("--check-config", action="store_true", help="validate and exit")
    run.set_defaults(handler=commands.run, parts=("portal", "relay", "bridge"))
    for part, text in (
        ("portal", "only the TV pages, console and API"),
        ("relay", "only the video relay"),
        ("bridge", "only the MQTT bridge"),
    ):
        p = sub.add_parser(part, help=text)
        p.add_argument("--check-config", action="store_true", help="validate and exit")
        p.set_defaults(handler=commands.run, parts=(part,), demo=False)

    db = sub.add_parser("db", help="database schema").add_subparsers(
        dest="db_command", required=True, metavar="ACTION"
    )
    p = db.add_parser("upgrade", help="apply migrations")
    _json_flag(p).set_defaults(handler=commands.db_upgrade)
    p = db.add_parser("status", help="current and expected schema revision")
    _json_flag(p).set_defaults(handler=commands.db_status)

    p = sub.add_parser("seed-demo", help="seed the demo county (idempotent) and print it")
    _json_flag(p).set_defaults(handler=commands.seed_demo)

    household = sub.add_parser("household", help="households").add_subparsers(
        dest="household_command", required=True, metavar="ACTION"
    )
    p = household.add_parser("add", help="register a household and print its pairing link")
    p.add_argument("--village", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--id", help="the county's roster id (default: generated)")
    p.add_argument("--address", default="")
    p.add_argument("--phone", default="")
    p.add_argument("--members", type=int, default=1)
    _json_flag(p).set_defaults(handler=commands.household_add)
    p = household.add_parser("reissue", help="new pairing link; the old one stops working")
    p.add_argument("--id", required=True)
    _json_flag(p).set_defaults(handler=commands.household_reissue)
    p = household.add_parser("pair-code", help="link the TV showing this code to a household")
    p.add_argument("--code", required=True, help="the digits the unpaired TV shows")
    p.add_argument("--household", required=True)
    _json_flag(p).set_defaults(handler=commands.household_pair_code)

    device = sub.add_parser("device", help="alarm buttons").add_subparsers(
        dest="device_command", required=True, metavar="ACTION"
    )
    p = device.add_parser("add", help="provision a device and print its MQTT credentials")
    p.add_argument("--household", required=True)
    p.add_argument("--id")
    _json_flag(p).set_defaults(handler=commands.device_add)
    p = device.add_parser("import", help="bulk provisioning from the county's roster CSV")
    p.add_argument("file", type=Path)
    _json_flag(p).set_defaults(handler=commands.device_import)

    staff_ = sub.add_parser("staff", help="staff accounts").add_subparsers(
        dest="staff_command", required=True, metavar="ACTION"
    )
    p = staff_.add_parser("add", help="create a staff account")
    p.add_argument("--username", required=True)
    p.add_argument("--role", required=True, choices=("village", "town", "county"))
    p.add_argument("--scope", required=True, help="the village, town or county id")
    p.add_argument("--display-name", default="")
    p.add_argument(
        "--password-stdin", action="store_true", required=True, help="read the password from stdin"
    )
    _json_flag(p).set_defaults(handler=commands.staff_add)

    camera = sub.add_parser("camera", help="public cameras").add_subparsers(
        dest="camera_command", required=True, metavar="ACTION"
    )
    p = camera.add_parser("add", help="register a camera")
    p.add_argument("--id", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--village", required=True)
    p.add_argument("--url", required=True, help="rtsp://, http(s)://, file:// or testsrc://")
    p.add_argument(
        "--mask",
        action="append",
        default=[],
        metavar="X,Y,W,H[,blur]|poly:X1,Y1;X2,Y2;X3,Y3[;...]",
        help="privacy mask in fractions of the frame (repeatable): a rectangle, black or"
        " blurred, or a black polygon of 3 to 32 corners",
    )
    p.add_argument("--profile", default="stb", choices=cameras.PROFILES)
    p.add_argument("--private", action="store_true", help="staff only, not shown to households")
    _json_flag(p).set_defaults(handler=commands.camera_add)

    p = sub.add_parser("mosquitto-config", help="password_file + acl_file + conf for Mosquitto")
    p.add_argument("--dir", required=True, type=Path, help="where to write the three files")
    p.add_argument("--port", type=int, default=1883, help="the broker's listener port")
    p.add_argument("--bind", default="0.0.0.0", help="the listener's address")  # noqa: S104
    _json_flag(p).set_defaults(handler=commands.mosquitto_config)
    return parser


def _json_flag(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--json", action="store_true", help="print JSON")
    return parser


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if level != "debug":
        for noisy in ("amqtt", "transitions", "aiohttp.access", "alembic"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
