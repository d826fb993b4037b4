"""Checks for values that people, files and devices hand us; each raises InvalidInput."""

from __future__ import annotations

import re
import unicodedata
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from xueliang.errors import InvalidInput

M = TypeVar("M", bound=BaseModel)

# Ids become MQTT topic levels, Mosquitto usernames and URL path segments: no '/', '+',
# '#', ':' or spaces, and they start with a letter or digit.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_PHONE = re.compile(r"\+?[0-9][0-9 -]{2,30}")


def number(text: str, max_digits: int) -> int | None:
    """A non-negative whole number written in ASCII digits only (ids in paths, event ids,
    segment numbers), or None for anything else, including overlong input."""
    if not text.isascii() or not text.isdigit() or len(text) > max_digits:
        return None
    return int(text)


# Row ids are 32-bit integers on PostgreSQL: a larger number names no row (and must not
# reach a query, where the driver would refuse it).
MAX_ROW_ID = 2**31 - 1


def row_id(text: str) -> int | None:
    """A database row id written in ASCII digits, or None for anything else (including
    numbers no row can have)."""
    found = number(text, 10)
    return found if found is not None and found <= MAX_ROW_ID else None


def identifier(field: str, value: str) -> str:
    if not _ID.fullmatch(value):
        raise InvalidInput(
            field, "must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return value


def text(field: str, value: str, *, max_length: int, required: bool = True) -> str:
    """Plain one-line text: trimmed, NFC-normalised, no control characters."""
    value = unicodedata.normalize("NFC", value.strip())
    if required and not value:
        raise InvalidInput(field, "must not be empty")
    if len(value) > max_length:
        raise InvalidInput(field, f"must be at most {max_length} characters")
    if any(unicodedata.category(ch)[0] == "C" for ch in value):
        raise InvalidInput(field, "must not contain control characters")
    return value


def phone(field: str, value: str) -> str:
    value = value.strip()
    if value and not _PHONE.fullmatch(value):
        raise InvalidInput(field, "must be digits, spaces or '-', optionally starting with '+'")
    return value


def model(cls: type[M], data: Any, what: str) -> M:
    """`data` as a `cls`, or InvalidInput naming the first bad field (`what` when the
    problem is the whole of it)."""
    try:
        return cls.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or what
        raise InvalidInput(field, first["msg"]) from None
