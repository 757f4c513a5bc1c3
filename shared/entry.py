"""What every function in function_app.py calls: the seam between indexing and handling events.

The Functions host imports function_app.py to index the app, on every cold start, before any event
arrives. Only this module is imported then; the engine (routes, action handlers, httpx, Jinja2, the
storage SDKs) loads when the first event does, so indexing costs little more than azure.functions.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any


def dispatch(function: str, event: Any) -> None:
    """Hand one delivered event to the engine; raises only to make Event Grid redeliver."""
    _engine().dispatch(function, event)


def flush_digests() -> None:
    """The flush_digests timer: deliver the digests of groups that have waited long enough."""
    _engine().flush_digests()


def check_expectations() -> None:
    """The check_expectations timer: act on expectations whose deadline passed (route `expect:`)."""
    _engine().check_expectations()


def _engine() -> ModuleType:
    """shared.worker, imported on the first event: everything the engine needs comes with it. Meanwhile
    the TLS context of the storage and webhook clients loads on a thread of its own: OpenSSL reads the
    CA certificates without holding the GIL, so that overlaps the imports instead of following them."""
    if "shared.worker" not in sys.modules:
        from shared.platform import tls

        tls.load_in_background()
    from shared import worker

    return worker
