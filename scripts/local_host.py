"""The Functions host, locally: the app's own function index, and each JSON event handed to its
function as the binding object azure-functions' converters build (what Azure hands the function).
Used by scripts/replay.py and scripts/send_event.py, by the tests and by bench/."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any


def event_files(paths: Iterable[str]) -> Iterator[Path]:
    for name in paths:
        path = Path(name)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*.json") if p.is_file())
        else:
            yield path


def binding_for(item: Any) -> Any:
    """The object the Functions host hands an Event Grid function for one JSON event."""
    import azure.functions as func

    def when(value: Any) -> Any:
        try:
            return datetime.fromisoformat(value) if isinstance(value, str) else value
        except ValueError:
            return value  # left for the event parser to reject, naming the field

    if "specversion" in item:
        extensions = {
            k: v for k, v in item.items() if k not in ("id", "source", "type", "specversion", "data", "time", "subject")
        }
        return func.CloudEvent(
            id=item.get("id"), source=item.get("source"), type=item.get("type"), specversion=item["specversion"],
            data=item.get("data"), time=when(item.get("time")), subject=item.get("subject"), **extensions,
        )  # fmt: skip
    return func.EventGridEvent(
        id=item.get("id"), data=item.get("data"), topic=item.get("topic"), subject=item.get("subject"),
        event_type=item.get("eventType"), event_time=when(item.get("eventTime")), data_version=item.get("dataVersion"),
    )  # fmt: skip


def function_for(item: Any) -> str | None:
    from shared.events.catalog import FUNCTION_FOR_EVENT_TYPE, full_event_type

    if not isinstance(item, dict):
        return None
    written = item.get("type") if "specversion" in item else item.get("eventType")
    event_type = full_event_type(written) if isinstance(written, str) else None
    return FUNCTION_FOR_EVENT_TYPE.get(event_type) if event_type else None


def replay_payload(body: bytes, functions: dict[str, Callable[[Any], None]], origin: str) -> None:
    """Hand every event in one delivery body to its function; reports go to the engine's observers."""
    from shared.events.model import EventRejected
    from shared.worker import DeliveryFailed, current_engine

    try:
        decoded = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        current_engine().reject(
            "replay", EventRejected("", f"{origin} is not JSON: {error}"), body.decode("utf-8", "replace")
        )
        return
    for item in decoded if isinstance(decoded, list) else [decoded]:
        function = function_for(item)
        if function is None:
            written = (item.get("type") or item.get("eventType")) if isinstance(item, dict) else None
            reason = (
                f"{written!r} is not an Azure ML event type any function takes"
                if written
                else f"missing: an event must be a JSON object with eventType (or type), got {type(item).__name__}"
            )
            event_id = item.get("id") if isinstance(item, dict) and isinstance(item.get("id"), str) else None
            current_engine().reject("replay", EventRejected("eventType", reason, event_id), item)
            continue
        try:
            functions[function](binding_for(item))
        except DeliveryFailed as error:
            if error.__cause__ is not None:  # storage down or routes broken: nothing was reported
                raise
            # otherwise each failed action has been reported; Event Grid would redeliver


@functools.cache
def indexed_functions() -> dict[str, Callable[[Any], None]]:
    """The app's functions by name, from its own index (which may be built only once per app)."""
    import function_app

    return {f.get_function_name(): f.get_user_function() for f in function_app.app.get_functions()}
