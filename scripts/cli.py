"""What the command-line scripts share."""

from __future__ import annotations

import argparse
from datetime import timedelta

from shared.routing.durations import parse_duration


def duration_argument(text: str) -> timedelta:
    """An argparse type for `--since 24h` and the like."""
    try:
        return timedelta(seconds=parse_duration(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def positive_int(text: str) -> int:
    """An argparse type for counts such as `--concurrency 8`."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
