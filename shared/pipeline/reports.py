"""What happened to each action: one `ActionReport` per (event, route, action), logged as the outcome
line that Application Insights and the Kusto queries read, and handed to observers (replay, tests)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from shared.ledger.records import DONE, FAILED, GROUPED, SKIPPED
from shared.noise.expectations import STEP_STATUSES

logger = logging.getLogger("aml_events.outcomes")

PLANNED, REJECTED, UNROUTED = "planned", "rejected", "unrouted"
# Seen only locally (replay, tests): the Functions worker refused the event before the app ran, so the
# invocation failed; in Azure, Event Grid retries it and then dead-letters it.
REFUSED = "refused"
# First word of every outcome log line: the Kusto queries in docs/kusto.md select on it.
OUTCOME_MESSAGE = "action"


@dataclass
class ActionReport:
    """One line of what happened: per (event, route, action), or per event when rejected/unrouted."""

    event_id: str | None
    event_type: str | None
    function: str
    route: str | None
    action: str | None
    status: str
    detail: str
    position: int | None = None
    target: str = ""
    attempts: int = 0
    duration_ms: float = 0.0
    in_progress: bool = False  # skipped because another delivery holds a live claim on the action

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))  # every field is a plain value: dataclasses.asdict's deep copy is waste

    @property
    def target_host(self) -> str:
        return self.target.split("/", 1)[0]

    @property
    def settled(self) -> bool:
        """Nothing is left to do for this line: done, skipped for good, rejected and recorded, unrouted, or
        what the event did to an expectation (route `expect:`)."""
        return self.status in (DONE, GROUPED, REJECTED, UNROUTED, *STEP_STATUSES) or (
            self.status == SKIPPED and not self.in_progress
        )

    def dimensions(self) -> dict[str, Any]:
        """The custom dimensions of this outcome's log line (Application Insights `customDimensions`)."""
        fields = {**self.to_dict(), "target_host": self.target_host}
        del fields["in_progress"]
        return {name: value for name, value in fields.items() if value not in (None, "")}


# ---- observers: replay and tests watch reports without changing what the functions return --------

_observers: list[Callable[[ActionReport], None]] = []


@contextmanager
def observe() -> Iterator[list[ActionReport]]:
    reports: list[ActionReport] = []
    _observers.append(reports.append)
    try:
        yield reports
    finally:
        _observers.remove(reports.append)


def observed(report: ActionReport) -> None:
    """Hand a report to the observers only: what the local host knows that the app never logs."""
    for observer in list(_observers):
        observer(report)


def emit(report: ActionReport) -> None:
    # Each `extra` key becomes an attribute of the log record, which the Python worker's OpenTelemetry
    # exporter (PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY) sends as one customDimensions entry. The
    # JSON in the message carries the same fields where the host's own logging drops `extra`.
    dimensions = report.dimensions()
    level = logging.WARNING if report.status in (FAILED, REJECTED) else logging.INFO
    logger.log(level, "%s %s: %s", OUTCOME_MESSAGE, report.status, json.dumps(dimensions, default=str),
               extra=dimensions)  # fmt: skip
    observed(report)
