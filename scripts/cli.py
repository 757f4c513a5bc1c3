"""What the command-line scripts share."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

from shared.routing.durations import parse_duration


def parser_from_doc(doc: str | None) -> argparse.ArgumentParser:
    """A parser whose --help is the script's docstring: the first paragraph above the options, the rest below."""
    summary, _, rest = (doc or "").partition("\n\n")
    return argparse.ArgumentParser(
        description=summary, epilog=rest, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def duration_argument(text: str) -> timedelta:
    """An argparse type for `--since 24h` and the like."""
    try:
        return timedelta(seconds=parse_duration(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def time_argument(text: str) -> datetime:
    """An argparse type for `--now 2026-12-02T01:00:00Z` (ISO 8601; without an offset, UTC)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time, e.g. 2026-12-02T01:00:00Z") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def positive_int(text: str) -> int:
    """An argparse type for counts such as `--concurrency 8`."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
