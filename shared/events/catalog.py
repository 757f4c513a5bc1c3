"""Which function takes which event types (Azure ML, storage, policy, resource), read from shared/functions.json."""

from __future__ import annotations

import json
from pathlib import Path

EVENT_TYPE_PREFIX = "Microsoft.MachineLearningServices."  # the Azure ML events'

# shared/functions.json: infra/ reads it too (loadJsonContent), so it stays at that path.
_CATALOG_FILE = Path(__file__).resolve().parent.parent / "functions.json"


def _load() -> dict[str, tuple[str, ...]]:
    raw = json.loads(_CATALOG_FILE.read_text(encoding="utf-8"))
    return {name: tuple(types) for name, types in raw.items() if not name.startswith("_")}


#: function name -> the full event types it receives
FUNCTION_EVENT_TYPES: dict[str, tuple[str, ...]] = _load()

#: full event type -> function name
FUNCTION_FOR_EVENT_TYPE: dict[str, str] = {
    event_type: function for function, types in FUNCTION_EVENT_TYPES.items() for event_type in types
}

#: every event type some function takes, full names
KNOWN_EVENT_TYPES: tuple[str, ...] = tuple(FUNCTION_FOR_EVENT_TYPE)


def short_event_type(event_type: str) -> str:
    """`Microsoft.Storage.BlobCreated` -> `BlobCreated`: the name routes use (unique across the sources)."""
    return event_type.rsplit(".", 1)[-1]


_BY_NAME = {name.lower(): event_type for event_type in KNOWN_EVENT_TYPES
            for name in (event_type, short_event_type(event_type))}  # fmt: skip


def full_event_type(name: str) -> str | None:
    """`RunStatusChanged` or the full type name, in any case -> the canonical full name (or None)."""
    return _BY_NAME.get(name.strip().lower())
