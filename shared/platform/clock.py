"""The time every stored timestamp is taken from (UTC, timezone-aware): every "now" the app reads
comes from here, so `replay.py --now/--tick` and tests can set the time instead of waiting for it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

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
