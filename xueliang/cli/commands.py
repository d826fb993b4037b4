"""The operator commands: each validates, calls one domain service, answers."""

from __future__ import annotations

import argparse
import sys

from mqtt_bridge import acl
from xueliang import cameras, demo, devices, households, pairing, provisioning, staff
from xueliang.cli.output import EXIT_REFUSED, answer, demo_summary, with_db
from xueliang.config import Settings
from xueliang.signing import load_secret_key
from xueliang.storage import Database, upgrade
from xueliang.storage.migrations_api import current_revision, head_revision


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.check_config:
        print(f"configuration is valid (database {Database(settings.database_url)!r})")
        return 0
    from xueliang.cli.serve import build_app, serve

    key = load_secret_key(settings.data_dir)
    return serve(build_app(settings, key, parts=args.parts, demo=args.demo), settings)


def db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    async def work(db: Database) -> dict[str, str | None]:
        await upgrade(db)
        return {"revision": await current_revision(db)}

    result = with_db(settings, work, check_schema=False)
    answer(args, result, f"database at revision {result['revision']}")
    return 0


def db_status(args: argparse.Namespace, settings: Settings) -> int:
    async def work(db: Database) -> dict[str, str | None]:
        return {"current": await current_revision(db), "head": head_revision()}

    result = with_db(settings, work, check_schema=False)
    state = "up to date" if result["current"] == result["head"] else "run `xueliang db upgrade`"
    answer(args, result, f"schema {result['current'] or 'empty'}, code {result['head']}: {state}")
    return 0


def seed_demo(args: argparse.Namespace, settings: Settings) -> int:
    key = load_secret_key(settings.data_dir)
    county = with_db(settings, lambda db: demo.seed(db, key))
    answer(args, county, demo_summary(county, settings.http.base_url()))
    return 0


def household_add(args: argparse.Namespace, settings: Settings) -> int:
    async def work(db: Database) -> households.NewHousehold:
        async with db.transaction() as conn:
            return await households.add(
                conn,
                village=args.village,
                name=args.name,
                id=args.id,
                address=args.address,
                phone=args.phone,
                members=args.members,
            )

    new = with_db(settings, work)
    data = {"id": new.household.id, "pair_url": new.pair_url}
    answer(args, data, f"household {new.household.id}: pair its TV with {new.pair_url}")
    return 0


def household_reissue(args: argparse.Namespace, settings: Settings) -> int:
    async def work(db: Database) -> str:
        async with db.transaction() as conn:
            return await households.reissue_pair_token(conn, args.id)

    url = households.pair_url(with_db(settings, work))
    answer(args, {"id": args.id, "pair_url": url}, f"household {args.id}: new pairing link {url}")
    return 0


def household_pair_code(args: argparse.Namespace, settings: Settings) -> int:
    async def work(db: Database) -> None:
        async with db.transaction() as conn:
            await pairing.bind(conn, args.code, args.household, by="cli")

    with_db(settings, work)
    answer(
        args,
        {"code": args.code.strip(), "household": args.household},
        f"the TV showing {args.code.strip()} now belongs to {args.household} "
        "(it opens the household's pages within 10 seconds)",
    )
    return 0


def device_add(args: argparse.Namespace, settings: Settings) -> int:
    async def work(db: Database) -> devices.NewDevice:
        async with db.transaction() as conn:
            return await devices.add(conn, household=args.household, id=args.id)

    new = with_db(settings, work)
    answer(
        args,
        new.as_json(),
        f"device {new.device.id} of household {new.device.household}\n"
        f"  MQTT username: {new.device.id}\n  MQTT password: {new.password}  (shown once)",
    )
    return 0


def device_import(args: argparse.Namespace, settings: Settings) -> int:
    try:
        raw = args.file.read_bytes()
    except OSError as e:
        print(f"xueliang: cannot read {args.file}: {e.strerror}", file=sys.stderr)
        return EXIT_REFUSED
    report = with_db(settings, lambda db: provisioning.import_devices(db, raw))
    lines = [
        f"imported {report.imported} rows: {len(report.devices)} new devices, "
        f"{report.households_created} new households, {len(report.errors)} rows refused"
    ]
    lines += [f"  line {e.line}: {e.reason}" for e in report.errors]
    lines += [
        f"  new {d.device.id} ({d.device.household}) password {d.password}" for d in report.devices
    ]
    answer(args, report.as_json(), "\n".join(lines))
    # Good rows are in; a non-zero exit still tells a script that some lines need fixing.
    return EXIT_REFUSED if report.errors else 0


def staff_add(args: argparse.Namespace, settings: Settings) -> int:
    # Never a command-line argument: those end up in shell history and `ps`.
    password = sys.stdin.readline().rstrip("\r\n")

    async def work(db: Database) -> staff.Staff:
        async with db.transaction() as conn:
            return await staff.add(
                conn,
                username=args.username,
                role=args.role,
                scope=args.scope,
                password=password,
                display_name=args.display_name,
            )

    account = with_db(settings, work)
    data = {"username": account.username, "role": account.role, "scope": account.scope}
    answer(args, data, f"staff {account.username}: {account.role} of {account.scope}")
    return 0


def camera_add(args: argparse.Namespace, settings: Settings) -> int:
    masks = tuple(cameras.parse_mask(m) for m in args.mask)

    async def work(db: Database) -> cameras.Camera:
        async with db.transaction() as conn:
            return await cameras.add(
                conn,
                id=args.id,
                name=args.name,
                village=args.village,
                url=args.url,
                masks=masks,
                profile=args.profile,
                public=not args.private,
            )

    camera = with_db(settings, work)
    data = {
        "id": camera.id,
        "name": camera.name,
        "village": camera.village,
        "url": camera.display_url,
        "profile": camera.profile,
        "public": camera.public,
        "masks": [m.model_dump() for m in camera.masks],
    }
    answer(args, data, f"camera {camera.id} in {camera.village}: {camera.display_url}")
    return 0


def mosquitto_config(args: argparse.Namespace, settings: Settings) -> int:
    accounts = with_db(settings, acl.device_accounts)
    try:
        files = acl.write_config(
            args.dir, devices=accounts, mqtt=settings.mqtt, port=args.port, bind=args.bind
        )
    except OSError as e:
        print(f"xueliang: cannot write {args.dir}: {e.strerror or e}", file=sys.stderr)
        return EXIT_REFUSED
    answer(args, files.as_json(), _mosquitto_text(files, settings, args))
    return 0


def _mosquitto_text(files: acl.MosquittoFiles, settings: Settings, args: argparse.Namespace) -> str:
    bridge = files.bridge
    lines = [
        f"Mosquitto files for {files.devices} devices and the bridge in {files.folder}:",
        f"  {files.password_file}  (mode 0600)",
        f"  {files.acl_file}",
        f"  {files.conf}",
    ]
    if bridge.source == "url":
        lines.append(f"Bridge account {bridge.username!r} with the password in XL_MQTT_URL.")
    elif bridge.source == "kept":
        lines.append(
            f"Bridge account {bridge.username!r} kept as it was (its password was shown when "
            "it was made; delete the password file for a new one)."
        )
    else:
        assert bridge.password is not None
        lines += [
            f"Bridge account {bridge.username!r}, new password (shown once): {bridge.password}",
            f"  set XL_MQTT_URL={_bridge_url(settings, args, bridge.username, bridge.password)}",
        ]
    lines += [
        f"Start the broker:  mosquitto -c {files.conf}",
        "After provisioning devices, run this command again, then `kill -HUP <mosquitto pid>`",
        "reloads the accounts and the ACL.",
        "Mosquitto started as root switches to the user `mosquitto`: give it the folder once",
        f"with `chown -R mosquitto: {files.folder}` (re-runs keep the files' owner).",
    ]
    return "\n".join(lines)


def _bridge_url(settings: Settings, args: argparse.Namespace, username: str, password: str) -> str:
    """The broker URL with new credentials: the configured address, else the listener's."""
    url = settings.mqtt.url
    if url is not None and url.host:
        scheme, host, port = url.scheme, url.host, url.port or args.port
    else:
        wildcard = args.bind in ("0.0.0.0", "::")  # noqa: S104
        scheme, host, port = "mqtt", "127.0.0.1" if wildcard else args.bind, args.port
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{scheme}://{username}:{password}@{host}:{port}"
