"""Bulk provisioning from the county's roster: one CSV row per device, households
created on the way. Idempotent: importing the same file twice changes nothing."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from sqlalchemy import select

from xueliang import devices, households, validation
from xueliang.errors import InvalidInput, XueliangError
from xueliang.storage import Database
from xueliang.storage.queries import rows_by_id
from xueliang.storage.tables import households as households_table
from xueliang.storage.tables import villages

HEADER = ("device", "household", "village", "household_name", "address", "phone")
HEADER_LINE = ",".join(HEADER) + "\n"
MAX_BYTES = 20 * 1024 * 1024
MAX_ROWS = 200_000
_MAX_FIELD = 1_000  # longer than any valid value; keeps a broken file from eating memory


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    reason: str


@dataclass(frozen=True, slots=True)
class Row:
    line: int
    device: str
    household: str
    village: str
    household_name: str
    address: str
    phone: str


@dataclass(slots=True)
class ImportReport:
    imported: int = 0
    errors: list[RowError] = field(default_factory=list)
    devices: list[devices.NewDevice] = field(default_factory=list)
    households_created: int = 0

    def as_json(self) -> dict[str, object]:
        return {
            "imported": self.imported,
            "errors": [{"line": e.line, "reason": e.reason} for e in self.errors],
            "devices": [d.as_json() for d in self.devices],
        }


def decode(raw: bytes) -> str:
    """UTF-8 (with or without BOM), else GB18030, which Chinese spreadsheet programs
    write by default."""
    if len(raw) > MAX_BYTES:
        raise InvalidInput("file", f"larger than {MAX_BYTES // (1024 * 1024)} MiB")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("gb18030")
    except UnicodeDecodeError:
        raise InvalidInput("file", "is neither UTF-8 nor GB18030 text") from None


def parse(text: str) -> tuple[list[Row], list[RowError]]:
    """Split the CSV into well-formed rows and errors; the header must be the contract's."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
    except csv.Error as e:
        raise InvalidInput("header", f"not valid CSV: {e}") from None
    if header is None or tuple(h.strip() for h in header) != HEADER:
        raise InvalidInput("header", "must be exactly: " + ",".join(HEADER))
    rows: list[Row] = []
    errors: list[RowError] = []
    while True:
        line = reader.line_num + 1
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            errors.append(RowError(line, f"not valid CSV: {e}"))
            continue
        if not any(v.strip() for v in values):
            continue  # blank lines are common at the end of exported sheets
        if len(rows) + len(errors) >= MAX_ROWS:
            raise InvalidInput("file", f"more than {MAX_ROWS} rows; split it")
        try:
            rows.append(_row(line, values))
        except InvalidInput as e:
            errors.append(RowError(line, str(e)))
    return rows, errors


def _row(line: int, values: list[str]) -> Row:
    if len(values) != len(HEADER):
        raise InvalidInput("row", f"has {len(values)} fields, expected {len(HEADER)}")
    if any(len(v) > _MAX_FIELD for v in values):
        raise InvalidInput("row", "has a field longer than 1000 characters")
    device, household, village, name, address, phone = (v.strip() for v in values)
    return Row(
        line=line,
        device=validation.identifier("device", device),
        household=validation.identifier("household", household),
        village=validation.identifier("village", village) if village else "",
        household_name=validation.text("household_name", name, max_length=100, required=False),
        address=validation.text("address", address, max_length=200, required=False),
        phone=validation.phone("phone", phone),
    )


async def import_devices(db: Database, raw: bytes) -> ImportReport:
    """Import a roster CSV: good rows are applied in one transaction, each bad row is
    reported with its line number and the reason."""
    rows, errors = parse(decode(raw))
    report = ImportReport(errors=errors)
    async with db.transaction() as conn:
        known_villages = set((await conn.execute(select(villages.c.id))).scalars())
        existing = await rows_by_id(conn, households_table, (r.household for r in rows))
        household_village = {id: row.village_id for id, row in existing.items()}
        device_owner = await devices.households_of(conn, (r.device for r in rows))
        new_households: list[households.Household] = []
        new_devices: list[tuple[str, str]] = []
        for row in rows:
            try:
                created = _plan(row, known_villages, household_village, device_owner)
            except XueliangError as e:
                report.errors.append(RowError(row.line, str(e)))
                continue
            report.imported += 1
            if created is not None:
                new_households.append(created)
            if row.device not in device_owner:
                device_owner[row.device] = row.household
                new_devices.append((row.device, row.household))
        # Imported households get no pairing token yet: operators issue one per box.
        await households.insert_many(conn, new_households)
        report.devices = await devices.insert_many(conn, new_devices)
    report.households_created = len(new_households)
    report.errors.sort(key=lambda e: e.line)
    return report


def _plan(
    row: Row,
    known_villages: set[str],
    household_village: dict[str, str],
    device_owner: dict[str, str],
) -> households.Household | None:
    """Check one row against what is stored (and earlier rows); return the household
    to create, if any. Mutates `household_village` so later rows see it."""
    owner = device_owner.get(row.device)
    if owner is not None and owner != row.household:
        raise InvalidInput("device", f"{row.device} already belongs to household {owner}")
    village = household_village.get(row.household)
    if village is not None:
        if row.village and row.village != village:
            raise InvalidInput(
                "village", f"household {row.household} is in village {village}, not {row.village}"
            )
        return None
    if not row.village:
        raise InvalidInput("village", "required for a household that does not exist yet")
    if row.village not in known_villages:
        raise InvalidInput("village", f"unknown village {row.village}")
    if not row.household_name:
        raise InvalidInput("household_name", "required for a household that does not exist yet")
    household = households.checked(
        village=row.village,
        name=row.household_name,
        id=row.household,
        address=row.address,
        phone=row.phone,
        members=1,
    )
    household_village[row.household] = row.village
    return household
