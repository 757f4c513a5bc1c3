"""Time as the app stores and compares it: timezone-aware UTC. Every "now" the app reads comes from
here, so `replay.py --now/--tick` and tests can set the time instead of waiting for it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

_frozen: datetime | None = None


def now() -> datetime:
    return _frozen if _frozen is not None else datetime.now(UTC)


@contextmanager
def frozen_at(moment: datetime) -> Iterator[None]:
    """Within the block, `now()` is `moment`: process-wide, for replay and tests, never in the app itself."""
    global _frozen
    previous, _frozen = _frozen, moment.astimezone(UTC)
    try:
        yield
    finally:
        _frozen = previous


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
