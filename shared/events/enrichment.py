"""Route option `enrich: true`: details fetched from the workspace that sent the event, before the
route's actions run.

Events are thin (a run id, a model name). Enrichment adds, for runs, the status, start and end
time, duration, error and metrics, and for registered models the description, the run that produced
the model and that run's metrics (handlers/azureml/workspace_reads.py does the reading). The fields reach
`when:` conditions as `run.*` / `model.*` and templates as `run` / `model`.

Three promises, because an alert matters more than its decoration:
- one fetch per event per worker, however many routes enrich (`Enricher` caches by event id);
- bounded in time: at most min(ENRICH_TIMEOUT_SECONDS, a third of what is left of the budget), so
  the actions still have theirs;
- a failure degrades the message, never drops it: the actions run without the details, and the
  problem is logged and written into each action's ledger record.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.events.model import AmlEvent, get_ci

#: what is fetched, and for which event types (a model's `run` is the run that produced it)
FETCHED_FOR = {
    "run": ("RunCompleted", "RunStatusChanged", "ModelRegistered"),
    "model": ("ModelRegistered",),
}
# How long a worker keeps an event's details: long enough for every route of one delivery, short
# enough that a redelivery minutes later fetches again (the run may have logged more by then).
CACHE_SECONDS = 60.0
CACHE_SIZE = 512


@dataclass(frozen=True)
class Enrichment:
    """What was fetched for one event: `run` and `model` as plain JSON-like mappings, or `problem`."""

    run: Mapping[str, Any] | None = None
    model: Mapping[str, Any] | None = None
    problem: str | None = None

    def view(self) -> dict[str, Any]:
        """The `run` / `model` roots that conditions read (absent when not fetched)."""
        return {name: value for name, value in (("run", self.run), ("model", self.model)) if value is not None}

    def facts(self) -> list[tuple[str, str]]:
        """What a message adds to the event's own facts."""
        if self.problem:
            return [("Details", f"unavailable ({self.problem})")]
        facts: list[tuple[str, str]] = []
        if self.model is not None:
            facts += [("Description", str(self.model.get("description") or "")),
                      ("Produced by run", str(self.model.get("job_name") or ""))]  # fmt: skip
        if self.run is not None:
            run = self.run
            metrics = run.get("metrics") or {}
            facts += [
                ("Run status", str(run.get("status") or "")),
                ("Started", _when(run.get("start_time"))),
                ("Ended", _when(run.get("end_time"))),
                ("Duration", str(run.get("duration") or "")),
                ("Error", str(run.get("error") or "")),
                ("Metrics", ", ".join(f"{name}={_number(value)}" for name, value in metrics.items())),
            ]
        return [(label, value) for label, value in facts if value]


def _when(value: Any) -> str:
    if not value:
        return ""
    try:
        return datetime.fromisoformat(str(value)).strftime("%Y-%m-%d %H:%M:%S UTC")
    except ValueError:
        return str(value)


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def duration_text(seconds: float) -> str:
    """12.0 -> '12s', 754 -> '12m 34s', 7384 -> '2h 3m 4s'."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h"] if hours else []
    if hours or minutes:
        parts.append(f"{minutes}m")
    parts.append(f"{secs}s")
    return " ".join(parts)


def enrichable(event: AmlEvent) -> bool:
    return any(event.short_type in types for types in FETCHED_FOR.values())


def lenient(value: Any) -> Any:
    """Enrichment as templates see it: a missing key renders empty instead of failing the message,
    because what the workspace returns varies by run (no metrics logged, no error)."""
    return Lenient(value) if isinstance(value, Mapping) else value


class Lenient(Mapping[str, Any]):
    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Any:
        return lenient(get_ci(self._data, key, _EMPTY_DATA))

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __str__(self) -> str:
        return "" if not self._data else str(dict(self._data))


_EMPTY_DATA: Mapping[str, Any] = {}
