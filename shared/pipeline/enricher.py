"""The worker's enrichment (route option `enrich: true`): one fetch per event per worker, bounded in
time, a failure degrading the message instead of dropping it. What is fetched and how it looks is in
shared/events/enrichment.py; the reading itself is injected as `fetch` by the composition root
(shared/worker.py), so this stage never imports an action kind."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

from shared.events.enrichment import Enrichment, enrichable
from shared.events.model import AmlEvent

logger = logging.getLogger("aml_events.pipeline.enricher")

# How long a worker keeps an event's details: long enough for every route of one delivery, short
# enough that a redelivery minutes later fetches again (the run may have logged more by then).
CACHE_SECONDS = 60.0
CACHE_SIZE = 512


@dataclass
class _Entry:
    future: Future[Enrichment]
    started: float


@dataclass
class Enricher:
    """The worker's enrichment: `fetch(event)` does the reading; results are cached per event id."""

    fetch: Callable[[AmlEvent], Enrichment]
    timeout_seconds: float = 5.0
    _cache: OrderedDict[str, _Entry] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=8, thread_name_prefix="enrich")
    )

    def enrich(self, event: AmlEvent, deadline: float) -> Enrichment:
        """The event's details, waiting at most min(timeout, a third of the time left before
        `deadline`); an Enrichment with `problem` set when they cannot be had in time."""
        if not enrichable(event):
            return Enrichment(problem=f"{event.short_type} events have no details to fetch")
        entry = self._entry(event)
        wait = max(0.0, min(self.timeout_seconds, (deadline - time.monotonic()) / 3))
        try:
            return entry.future.result(timeout=max(0.0, entry.started + wait - time.monotonic()))
        except FutureTimeout:
            problem = f"no answer from the workspace within {wait:.1f}s"
            logger.warning("enrichment of event %s: %s; acting without details", event.id, problem)
            return Enrichment(problem=problem)

    def _entry(self, event: AmlEvent) -> _Entry:
        now = time.monotonic()
        with self._lock:
            entry = self._cache.get(event.id)
            if entry is not None and now - entry.started < CACHE_SECONDS:
                return entry
            entry = _Entry(self._pool.submit(self._fetch_logged, event), now)
            self._cache[event.id] = entry
            self._cache.move_to_end(event.id)
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
            return entry

    def _fetch_logged(self, event: AmlEvent) -> Enrichment:
        try:
            enrichment = self.fetch(event)
        except Exception as error:  # a bug or an SDK surprise must not drop the alert
            logger.exception("enrichment of event %s crashed", event.id)
            enrichment = Enrichment(problem=f"{type(error).__name__}: {error}")
        if enrichment.problem:
            logger.warning("enrichment of event %s: %s; acting without details", event.id, enrichment.problem)
        return enrichment
