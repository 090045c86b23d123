"""Exceptions: one class per exit code of instance-sync, under SyncError."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

__all__ = [
    "SyncError",
    "UsageError",
    "ConflictError",
    "CancelledError",
    "AuthError",
    "LockedError",
    "ResticMissingError",
    "BinaryNotFoundError",
    "BinaryTooOldError",
    "ConfigError",
    "Side",
    "parse_time",
]


class SyncError(Exception):
    """An operation failed. ``message`` is instance-sync's one-line error
    (it names the thing and the fix); ``exit_code`` its exit code;
    ``events`` every --json event of the run; ``stderr`` its human output."""

    exit_code_value = 1

    def __init__(
        self,
        message: str,
        *,
        exit_code: int | None = None,
        events: list[dict[str, Any]] | None = None,
        stderr: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = self.exit_code_value if exit_code is None else exit_code
        self.events = list(events or [])
        self.stderr = stderr


class UsageError(SyncError):
    """Exit code 2: instance-sync refused the command line."""

    exit_code_value = 2


@dataclass(frozen=True)
class Side:
    """One version of the instance in a conflict: this computer's
    (``snapshot`` is None) or one of the cloud's."""

    host: str
    label: str
    time: datetime | None
    bytes: int
    files: int
    worlds: list[str] = field(default_factory=list)
    snapshot: str | None = None

    @classmethod
    def from_event(cls, d: Any) -> "Side":
        if not isinstance(d, dict):
            d = {}
        return cls(
            host=str(d.get("host") or ""),
            label=str(d.get("label") or ""),
            time=parse_time(d.get("time")),
            bytes=int(d.get("bytes") or 0),
            files=int(d.get("files") or 0),
            worlds=[str(w) for w in (d.get("worlds") or [])],
            snapshot=d.get("snapshot") or None,
        )


class ConflictError(SyncError):
    """Exit code 3: the same world changed on this computer and in the cloud
    (or in two cloud versions; everything else merges), or, when no merge is
    possible, both changed at all; nothing was changed. The facts come from the
    ``conflict`` event: ``reason``, ``heads`` (cloud snapshot ids),
    ``instance`` (label), ``local`` (a Side) and ``cloud`` (Sides, newest
    first). Resolve with ``pull(Args(..., prefer="cloud"|"local"))``."""

    exit_code_value = 3

    def __init__(self, message: str, *, conflict: dict[str, Any] | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        c = conflict or {}
        self.conflict = c
        self.reason: str = str(c.get("reason") or "")
        self.heads: list[str] = [str(h) for h in (c.get("heads") or [])]
        self.instance: str = str(c.get("instance") or "")
        self.local: Side | None = Side.from_event(c["local"]) if isinstance(c.get("local"), dict) else None
        cloud = c.get("cloud") or []
        if isinstance(cloud, dict):
            cloud = [cloud]
        self.cloud: list[Side] = [Side.from_event(s) for s in cloud]


class CancelledError(ConflictError):
    """Exit code 3 after the player cancelled (the conflict dialog's
    "Cancel launch", or a progress dialog's Cancel). The conflict facts are
    set when a conflict was shown."""


class AuthError(SyncError):
    """Exit code 4: the server refused the user or password."""

    exit_code_value = 4


class LockedError(SyncError):
    """Exit code 5: another sync of this instance is running."""

    exit_code_value = 5


class ResticMissingError(SyncError):
    """Exit code 6: restic is missing and could not be obtained."""

    exit_code_value = 6


class BinaryNotFoundError(SyncError):
    """No instance-sync binary where the package looks for one."""


class BinaryTooOldError(SyncError):
    """The instance-sync binary predates the protocol this package needs."""


class ConfigError(SyncError):
    """config.write was given something it cannot write."""


_TIME = re.compile(r"^(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:\.(\d+))?([Zz]|[+-]\d\d:\d\d)$")


def parse_time(s: Any) -> datetime | None:
    """An RFC 3339 time as Go writes it (up to nanoseconds), as an aware
    datetime; None for anything else or Go's zero time."""
    if not isinstance(s, str):
        return None
    m = _TIME.match(s)
    if not m:
        return None
    y, mo, d, h, mi, sec, frac, zone = m.groups()
    if zone in ("Z", "z"):
        tz = timezone.utc
    else:
        sign = 1 if zone[0] == "+" else -1
        tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    micro = int((frac or "0")[:6].ljust(6, "0"))
    try:
        t = datetime(int(y), int(mo), int(d), int(h), int(mi), int(sec), micro, tzinfo=tz)
    except ValueError:
        return None
    if t.year == 1:
        return None
    return t
