"""parse -> match -> act -> record, for one delivered event.

The functions in function_app.py hand each event to `dispatch`. An event that cannot be understood
is recorded as rejected and the function returns normally (no 24-hour redelivery of poison). Each
matching route's actions run concurrently, each behind its ledger claim, with retries inside the
invocation's time budget. If any action failed, `dispatch` raises after recording, so Event Grid
redelivers and the ledger skips whatever is already done.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

from handlers.base import ActionContext, ActionFailed, ActionSkipped
from shared.events import AmlEvent, EventRejected, parse_event
from shared.ledger import (
    DONE,
    FAILED,
    SKIPPED,
    AlreadyHandled,
    Ledger,
    LedgerRecord,
    LedgerUnavailable,
)
from shared.routes import Route, RouteAction, RoutesError, RouteTable, routes_for
from shared.settings import Settings, current_settings

logger = logging.getLogger("aml_events")

PLANNED, REJECTED, UNROUTED = "planned", "rejected", "unrouted"
# Time kept back from the budget to record outcomes after the last attempt.
RECORDING_RESERVE_SECONDS = 1.0


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class DeliveryFailed(RuntimeError):
    """Raised by a function so that Event Grid redelivers the event."""


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


def _emit(report: ActionReport) -> None:
    dimensions = {k: v for k, v in report.to_dict().items() if v not in (None, "")}
    level = logging.WARNING if report.status in (FAILED, REJECTED) else logging.INFO
    logger.log(level, "action %s: %s", report.status, json.dumps(dimensions, default=str),
               extra={"custom_dimensions": dimensions})  # fmt: skip
    for observer in _observers:
        observer(report)


class Engine:
    def __init__(
        self,
        settings: Settings,
        routes: Callable[[], RouteTable],
        ledger: Ledger | None,
        *,
        dry_run: bool = False,
    ) -> None:
        self.settings = settings
        self.routes = routes
        self.ledger = ledger
        self.dry_run = dry_run
        self._pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="action")

    def handle(self, function: str, raw: Any) -> list[ActionReport]:
        started = time.monotonic()
        deadline = started + self.settings.invocation_budget_seconds
        try:
            event = parse_event(raw)
            if event.function != function:
                raise EventRejected(
                    "eventType", f"{event.event_type} is taken by function {event.function}, not {function}", event.id
                )
        except EventRejected as rejected:
            return [self.reject(function, rejected, raw)]
        matched = self.routes().matching(event)
        if not matched:
            report = ActionReport(event.id, event.event_type, function, None, None, UNROUTED, "no route matches")
            _emit(report)
            return [report]
        jobs = [(route, action) for route in matched for action in route.actions]
        if len(jobs) == 1:
            return [self._run(event, function, *jobs[0], deadline)]
        futures = [self._pool.submit(self._run, event, function, route, action, deadline) for route, action in jobs]
        return [future.result() for future in futures]

    def reject(self, function: str, rejected: EventRejected, raw: Any) -> ActionReport:
        """Record an input that cannot be handled; it is not raised (no redelivery of poison)."""
        report = ActionReport(rejected.event_id, None, function, None, None, REJECTED, str(rejected))
        if self.ledger is not None and not self.dry_run:
            self.ledger.record_rejection(function, str(rejected), _raw_for_record(raw), rejected.event_id)
        _emit(report)
        return report

    def _run(self, event: AmlEvent, function: str, route: Route, action: RouteAction, deadline: float) -> ActionReport:
        started = time.monotonic()
        report = ActionReport(
            event.id, event.event_type, function, route.name, action.kind, PLANNED, "",
            position=action.position, target=action.target,
        )  # fmt: skip
        if self.dry_run or self.ledger is None:
            report.detail = f"would run {action.kind} -> {action.target}"
            _emit(report)
            return report
        record = LedgerRecord(
            event.id, route.name, action.position, action.kind, action.target, "", event_type=event.event_type,
            function=function,
        )  # fmt: skip
        claim = self.ledger.claim(record, self.settings.lease_seconds)
        if isinstance(claim, AlreadyHandled):
            report.status, report.attempts = SKIPPED, claim.record.attempts
            report.detail = (
                "in progress in another delivery"
                if claim.in_progress
                else f"already {claim.record.status}: {claim.record.detail}"
            )
            _emit(report)
            return report
        previous_attempts = claim.previous.attempts if claim.previous else 0
        status, detail, attempts, extra = self._attempt(event, route, action, record.key, deadline)
        report.status, report.detail, report.attempts = status, detail, previous_attempts + attempts
        report.duration_ms = round((time.monotonic() - started) * 1000, 1)
        self.ledger.finish(claim, status, detail, report.attempts, extra)
        _emit(report)
        return report

    def _attempt(
        self, event: AmlEvent, route: Route, action: RouteAction, key: str, deadline: float
    ) -> tuple[str, str, int, dict[str, Any]]:
        """Run the action, retrying transient failures; (status, detail, attempts, extra)."""
        policy = action.retry
        budget_end = deadline - RECORDING_RESERVE_SECONDS
        for attempt in range(1, policy.attempts + 1):
            action_deadline = (
                budget_end if action.timeout is None else min(budget_end, time.monotonic() + action.timeout)
            )
            ctx = ActionContext(event, route.name, action.position, key, action_deadline, self.settings, attempt)
            try:
                outcome = action.action.run(ctx)
                return DONE, outcome.detail, attempt, outcome.record
            except ActionSkipped as skipped:
                return SKIPPED, str(skipped), attempt, {}
            except ActionFailed as failed:
                if not failed.retryable or attempt == policy.attempts:
                    return FAILED, str(failed), attempt, {}
                wait = min(policy.max_backoff, policy.backoff * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
                if failed.retry_after is not None:
                    wait = max(wait, failed.retry_after)
                if time.monotonic() + wait >= budget_end:
                    return FAILED, f"{failed} (time budget spent; Event Grid will redeliver)", attempt, {}
                time.sleep(wait)
            except Exception as error:  # a bug in a handler must not take the other actions down
                logger.exception("action %s of route %s crashed", action.kind, route.name)
                return FAILED, f"{type(error).__name__}: {error}", attempt, {}
        raise AssertionError("unreachable: the loop returns on its last attempt")


def _raw_for_record(raw: Any) -> Any:
    """What a rejected input looked like, in a form the ledger can store."""
    if hasattr(raw, "get_json"):
        try:
            data = raw.get_json()
        except ValueError:
            data = None
        names = ("id", "topic", "subject", "event_type", "type", "source", "data_version")
        return {**{name: str(getattr(raw, name, None)) for name in names if hasattr(raw, name)}, "data": data}
    return raw


# ---- the worker's engine ------------------------------------------------------------------------------

_engine: Engine | None = None
_engine_lock = threading.Lock()


def current_engine() -> Engine:
    """Built on first use: routes and storage clients are created once per worker, not per event."""
    global _engine
    with _engine_lock:
        if _engine is None:
            from shared.ledger import TableLedger

            settings = current_settings()
            _engine = Engine(
                settings, lambda: routes_for(settings.routes_file, settings.environ), TableLedger(settings)
            )
        return _engine


def use_engine(engine: Engine | None) -> None:
    """Replace the worker's engine (replay --dry-run, tests); None rebuilds it from settings."""
    global _engine
    with _engine_lock:
        _engine = engine


def dispatch(function: str, raw: Any) -> None:
    """Entry point of every Event Grid function: raises only to make Event Grid redeliver."""
    try:
        reports = current_engine().handle(function, raw)
    except LedgerUnavailable as error:
        raise DeliveryFailed(f"{error}; no action ran without its claim, Event Grid will redeliver") from error
    except RoutesError as error:
        raise DeliveryFailed(f"{error}\nFix routes.yaml and redeploy; Event Grid will redeliver") from error
    failed = [report for report in reports if report.status == FAILED]
    if failed:
        summary = "; ".join(f"{r.route}/{r.action}#{r.position}: {r.detail}" for r in failed)
        raise DeliveryFailed(f"{len(failed)} of {len(reports)} actions failed, Event Grid will redeliver: {summary}")
