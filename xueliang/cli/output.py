"""How commands answer: exit codes, text or `--json`, and the database they open."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from xueliang.config import Settings
from xueliang.storage import Database, ensure_schema

T = TypeVar("T")

EXIT_REFUSED = 1  # the request was understood and refused (bad value, unknown id)
EXIT_CONFIG = 2  # the configuration or the schema must be fixed first


def answer(args: argparse.Namespace, data: Any, text: str) -> None:
    """Print `data` as JSON when `--json` was given, else the human text."""
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        print(text)


def with_db(
    settings: Settings, work: Callable[[Database], Awaitable[T]], *, check_schema: bool = True
) -> T:
    """Open the database, bring the schema up to date (or refuse), run `work`, close."""

    async def go() -> T:
        db = Database(settings.database_url)
        try:
            if check_schema:
                await ensure_schema(db, settings.database.auto_upgrade)
            return await work(db)
        finally:
            await db.close()

    return asyncio.run(go())


def demo_summary(county: dict[str, Any], base_url: str) -> str:
    """What a person needs to try the demo: TV links, console, accounts, buttons."""
    lines = [f"Demo county {county['county']} (新津县) is ready.", "", "TV pairing links:"]
    for h in county["households"]:
        link = base_url + h["pair_url"] if h["pair_url"] else "(re-issued since)"
        lines.append(f"  {h['id']:<12} {h['name']}  {link}")
    lines += ["", f"Console: {base_url}/centre/", "Staff accounts (username / password):"]
    for s in county["staff"]:
        password = s["password"] or "(changed since)"
        lines.append(f"  {s['username']:<18} {password:<18} {s['role']} {s['scope']}")
    lines += ["", "Alarm buttons (MQTT username = device id / password):"]
    for d in county["devices"]:
        lines.append(f"  {d['id']:<16} {d['password'] or '(changed since)'}")
    lines += ["", "Cameras: " + ", ".join(c["id"] for c in county["cameras"])]
    return "\n".join(lines)
