"""Typed domain errors. Views and the CLI translate them; nothing else catches them."""

from __future__ import annotations


class XueliangError(Exception):
    """Base of every error the domain raises on purpose."""


class ConfigError(XueliangError):
    """The configuration is invalid; `problems` holds (field path, message) pairs."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {path}: {message}" for path, message in problems)
        super().__init__(f"invalid configuration ({source}):\n{lines}")


class NotFound(XueliangError):
    """A referenced object does not exist (or is outside the caller's scope)."""

    def __init__(self, kind: str, ident: str) -> None:
        self.kind = kind
        self.ident = ident
        super().__init__(f"{kind} {ident!r} not found")


class AlreadyExists(XueliangError):
    """An object with this id already exists with different data."""

    def __init__(self, kind: str, ident: str) -> None:
        self.kind = kind
        self.ident = ident
        super().__init__(f"{kind} {ident!r} already exists")


class InvalidInput(XueliangError):
    """A value given by a person or a device is not acceptable; `field` names it."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class Conflict(XueliangError):
    """The request contradicts stored data (e.g. a device already bound elsewhere)."""


class InvalidCredentials(XueliangError):
    """A username, password or token did not match."""


class SchemaOutdated(XueliangError):
    """The database schema is older than this code; run `xueliang db upgrade`."""


class FfmpegNotFound(XueliangError):
    """Neither a configured, a system nor a bundled ffmpeg binary could be found."""


class InvalidTransition(Conflict):
    """The alarm's state does not allow that action (e.g. resolving a cancelled alarm)."""


class Throttled(XueliangError):
    """Too many failed attempts; try again after `retry_after_s` seconds."""

    def __init__(self, retry_after_s: int) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(f"too many failed attempts; try again in {retry_after_s} s")


class Busy(XueliangError):
    """A shared resource is at its limit (e.g. concurrent transcodes); retry later."""
