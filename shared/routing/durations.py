"""Durations as users write them in routes.yaml: `500ms`, `30s`, `2m`, `6h`, `1d`, or a number of seconds."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$", re.IGNORECASE)
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(value: object) -> float:
    """Seconds; raises ValueError with a message fit for the user."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration (use e.g. 30s, 2m, 6h)")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"{value!r} is not a duration (use e.g. 30s, 2m, 6h)")
        unit = match[2].lower() if match[2] else None
        seconds = float(match[1]) * _SECONDS[unit]
    if seconds < 0:
        raise ValueError(f"{value!r} is negative")
    return seconds
