"""`mute:` windows on a route: recurring times (days of the week and hours, in a time zone) when the
route's actions are skipped, e.g. a weekly maintenance window or nights for a non-urgent channel.

    mute:
      - {days: [sat, sun]}                                        # all weekend, UTC
      - {days: [mon-fri], from: "22:00", to: "06:00", timezone: Europe/Berlin}

A window whose `to` is not after its `from` runs past midnight into the next day; `days` are the
days the window starts on (default: every day); `from`/`to` default to the whole day.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLOCK = re.compile(r"^([01]?\d|2[0-4]):([0-5]\d)$")
WINDOW_KEYS = ("days", "from", "to", "timezone")


@dataclass(frozen=True)
class MuteWindow:
    days: frozenset[int]  # weekday numbers (Monday = 0) the window starts on
    start: int  # minutes after midnight
    end: int  # minutes after midnight; <= start: the window ends the next day
    timezone: str = "UTC"
    written: str = ""  # as the user wrote it, for the record

    def covers(self, moment: datetime) -> bool:
        local = moment.astimezone(ZoneInfo(self.timezone))
        minutes = local.hour * 60 + local.minute
        if self.end > self.start:
            return local.weekday() in self.days and self.start <= minutes < self.end
        # Past midnight: the part before midnight belongs to today, the part after to yesterday's window.
        yesterday = (local - timedelta(days=1)).weekday()
        return (local.weekday() in self.days and minutes >= self.start) or (
            yesterday in self.days and minutes < self.end
        )


def parse_mutes(spec: Any) -> tuple[tuple[MuteWindow, ...], list[str]]:
    """The route's `mute:` list -> windows, and the problems found."""
    items = spec if isinstance(spec, list) else [spec]
    windows, problems = [], []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            problems.append(f"mute[{index}] must be a mapping like {{days: [sat, sun], from: '22:00', to: '06:00'}}")
            continue
        found: list[str] = []
        window = _parse_window(item, found)
        problems.extend(f"mute[{index}]: {problem}" for problem in found)
        if window is not None:
            windows.append(window)
    return tuple(windows), problems


def _parse_window(item: Mapping[str, Any], problems: list[str]) -> MuteWindow | None:
    check_keys(item, WINDOW_KEYS, problems)
    days = parse_days(item.get("days"), problems)
    start = parse_clock(item.get("from", "00:00"), "from", problems)
    end = parse_clock(item.get("to", "24:00"), "to", problems)
    timezone = parse_timezone(item.get("timezone"), problems)
    if problems or start is None or end is None:
        return None
    written = ", ".join(f"{key}: {item[key]}" for key in WINDOW_KEYS if key in item) or "always"
    return MuteWindow(days, start, end, timezone, written)


def check_keys(item: Mapping[str, Any], allowed: tuple[str, ...], problems: list[str]) -> None:
    for key in item:
        if key not in allowed:
            problems.append(f"unknown key {key!r} (allowed: {', '.join(allowed)})")


def parse_timezone(value: Any, problems: list[str]) -> str:
    """The IANA time zone written, UTC when none."""
    timezone = str(value or "UTC")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"unknown timezone {timezone!r} (an IANA name such as Europe/Berlin or UTC)")
    return timezone


def parse_days(spec: Any, problems: list[str]) -> frozenset[int]:
    if spec is None:
        return frozenset(range(7))
    names = spec if isinstance(spec, list) else [spec]
    days: set[int] = set()
    for name in names:
        first, _, last = str(name).strip().lower().partition("-")
        if first[:3] not in DAY_NAMES or (last and last[:3] not in DAY_NAMES):
            problems.append(f"days: {name!r} is not a day (mon, tue, ..., sun, or a range like mon-fri)")
            continue
        start = DAY_NAMES.index(first[:3])
        stop = DAY_NAMES.index(last[:3]) if last else start
        days.update((start + offset) % 7 for offset in range((stop - start) % 7 + 1))
    return frozenset(days)


def parse_clock(value: Any, key: str, problems: list[str]) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 24 * 60:
        return value  # YAML 1.1 reads an unquoted 22:00 as the base-60 number 1320: minutes already
    match = _CLOCK.match(str(value).strip())
    if not match or (match[1] == "24" and match[2] != "00"):
        problems.append(f"{key}: {value!r} is not a time of day (HH:MM, 00:00 to 24:00; quote it in YAML)")
        return None
    return int(match[1]) * 60 + int(match[2])


def muting_window(windows: tuple[MuteWindow, ...], moment: datetime) -> MuteWindow | None:
    return next((window for window in windows if window.covers(moment)), None)
