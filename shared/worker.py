"""The composition root: the worker's engine, built once from settings with its stages injected, and
the two entry points that function_app.py reaches through shared/entry.py.

This is the only module under shared/ that imports handlers/ (lazily, on first use): the routes
parser gets the action kinds from here, the enricher its workspace reads.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shared.events.enrichment import Enrichment
from shared.events.model import AmlEvent
from shared.ledger.records import FAILED, LedgerUnavailable
from shared.noise.expectations import ExpectationStore
from shared.noise.gate import Gate
from shared.pipeline.engine import Engine
from shared.pipeline.enricher import Enricher
from shared.routing import routes as routing
from shared.routing.routes import RoutesError, RouteTable
from shared.settings import current_settings


class DeliveryFailed(RuntimeError):
    """Raised by a function so that Event Grid redelivers the event."""


# ---- the app's routes: the routes parser with this app's action kinds -------------------------------


def _kinds() -> Any:
    from handlers import ACTION_KINDS  # each kind's module loads when a route first names it

    return ACTION_KINDS


def load_routes(path: str | Path, environ: Mapping[str, str] | None = None) -> RouteTable:
    return routing.load_routes(path, environ, kinds=_kinds())


def parse_routes(text: str, source: str, environ: Mapping[str, str]) -> RouteTable:
    return routing.parse_routes(text, source, environ, kinds=_kinds())


def routes_for(path: Path, environ: Mapping[str, str]) -> RouteTable:
    """Routes compiled once per worker and reloaded when the file changes."""
    return routing.routes_for(path, environ, kinds=_kinds())


def _fetch_details(event: AmlEvent) -> Enrichment:
    from handlers.azureml.workspace_reads import fetch  # azure.ai.ml: not at import time

    return fetch(event)


# ---- the worker's engine ------------------------------------------------------------------------------


_engine: Engine | None = None
_engine_lock = threading.Lock()


def current_engine() -> Engine:
    """Built on first use: routes and storage clients are created once per worker, not per event."""
    global _engine
    with _engine_lock:
        if _engine is None:
            from shared.ledger.table import TableLedger

            settings = current_settings()
            _engine = Engine(
                settings, lambda: routes_for(settings.routes_file, settings.environ), TableLedger(settings),
                gate=Gate(settings), enricher=Enricher(_fetch_details, settings.enrich_timeout_seconds),
                expectations=ExpectationStore(settings),
            )  # fmt: skip
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
    # An action another delivery is running is not finished: answering success would let Event Grid
    # forget the event, and if that other worker dies the action would never complete.
    busy = [report for report in reports if report.in_progress]
    if failed or busy:
        problems = [f"{len(failed)} of {len(reports)} actions failed"] if failed else []
        if busy:
            problems.append(f"{len(busy)} in progress in another delivery")
        summary = "; ".join(f"{r.route}/{r.action}#{r.position}: {r.detail}" for r in failed + busy)
        raise DeliveryFailed(f"{', '.join(problems)}, Event Grid will redeliver: {summary}")


def flush_digests() -> None:
    """Entry point of the flush_digests timer: deliver every due digest."""
    current_engine().flush_due()


def check_expectations() -> None:
    """Entry point of the check_expectations timer: act on every due expectation (route `expect:`)."""
    current_engine().check_expectations()
