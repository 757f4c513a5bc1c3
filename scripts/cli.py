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
