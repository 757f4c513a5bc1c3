"""Time as the app stores and compares it: timezone-aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def now() -> datetime:
    return datetime.now(UTC)


def utc(value: datetime) -> datetime:
    """A time as a plain aware UTC datetime: Table Storage returns a subclass of its own, and a time
    without a zone is taken as UTC (what the storage and the Azure ML services write)."""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromtimestamp(aware.timestamp(), UTC)


def parse_utc(value: Any) -> datetime | None:
    """An ISO 8601 time as a service writes it (`Z`, an offset, or none), in UTC; None if it is not one."""
    if not value:
        return None
    try:
        return utc(datetime.fromisoformat(str(value).replace("Z", "+00:00")))
    except ValueError:
        return None
