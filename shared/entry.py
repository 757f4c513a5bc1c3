"""What every function in function_app.py calls: the seam between indexing and handling events.

The Functions host imports function_app.py to index the app, on every cold start, before any event
arrives. Only this module is imported then; the engine (routes, action handlers, httpx, Jinja2, the
storage SDKs) loads when the first event does, so indexing costs little more than azure.functions.
"""

from __future__ import annotations

from typing import Any


def dispatch(function: str, event: Any) -> None:
    """Hand one delivered event to the engine; raises only to make Event Grid redeliver."""
    from shared import engine  # the one deferred import: everything the engine needs comes with it

    engine.dispatch(function, event)


def flush_digests() -> None:
    """The flush_digests timer: deliver the digests of groups that have waited long enough."""
    from shared import engine

    engine.flush_digests()
