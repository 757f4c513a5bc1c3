"""The windows of a recurring expectation, in UTC, computed from local times in its time zone.

A window ends at the deadline (`by`, local time, on one of `days`) and starts at `since` the same
day, or the day before when `since` is not earlier than `by` (default: `by` the day before). Local
times are converted with zoneinfo on each date, so a window across a daylight-saving change is
shorter or longer than 24 hours while its local times stay as written. A local time that does not
exist on that date (skipped by a change) is read with the offset before the change, i.e. an hour
later in local terms; one that occurs twice is taken the first time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from shared.routing.expect import Recurring

_SEARCH_DAYS = 9  # a window ends on one of `days`, each week: nine days always find one


@dataclass(frozen=True)
class Window:
    start: datetime  # UTC, inclusive
    end: datetime  # UTC, the deadline, exclusive
    key: str  # the deadline's local date, e.g. 2026-03-30: names the window in storage and messages

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


def _local(day: date, minutes: int, spec: Recurring) -> datetime:
    moment = datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=spec.zone)
    return moment.astimezone(UTC)


def window_ending_on(day: date, spec: Recurring) -> Window:
    """The window whose deadline is `by` on local date `day`."""
    end = _local(day, spec.by, spec)
    if spec.since is None:
        start = _local(day - timedelta(days=1), spec.by, spec)
    elif spec.since < spec.by:
        start = _local(day, spec.since, spec)
    else:
        start = _local(day - timedelta(days=1), spec.since, spec)
    return Window(start, end, day.isoformat())


def _windows_around(spec: Recurring, moment: datetime) -> list[Window]:
    local_day = moment.astimezone(spec.zone).date()
    days = (local_day + timedelta(days=offset) for offset in range(-_SEARCH_DAYS, _SEARCH_DAYS))
    return [window_ending_on(day, spec) for day in days if day.weekday() in spec.days]


def next_window(spec: Recurring, after: datetime) -> Window:
    """The first window whose deadline is later than `after`."""
    return next(window for window in _windows_around(spec, after) if window.end > after)


def window_containing(spec: Recurring, moment: datetime) -> Window | None:
    """The window an event at `moment` counts for, or None when it falls between windows."""
    window = next_window(spec, moment)
    return window if window.contains(moment) else None


def last_window(spec: Recurring, moment: datetime) -> Window | None:
    """The latest window whose deadline has passed at `moment` (within the last nine days)."""
    passed = [window for window in _windows_around(spec, moment) if window.end <= moment]
    return passed[-1] if passed else None
