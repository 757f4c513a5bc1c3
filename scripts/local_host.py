"""The Functions host, locally: the app's own function index, and each JSON event handed to its
function as the binding object azure-functions' converters build (what Azure hands the function).
Used by scripts/replay.py and scripts/send_event.py, by the tests and by bench/."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any


def event_files(paths: Iterable[str]) -> Iterator[Path]:
    for name in paths:
        path = Path(name)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*.json") if p.is_file())
        else:
            yield path


class WorkerRefused(Exception):
    """The Functions worker's own converter refused the event, before any app code ran. In Azure the
    invocation fails: Event Grid retries it, then dead-letters it. Nothing of the app records it."""

    def __init__(self, item: dict[str, Any], error: Exception) -> None:
        name = "time" if "specversion" in item else "eventTime"
        value = item.get(name)
        super().__init__(
            f"{name} {value!r:.60}: the Functions worker cannot decode it ({type(error).__name__} in azure-functions'"
            " EventGridEventInConverter), so the invocation fails before the app runs and nothing is recorded;"
            " Event Grid retries it, then dead-letters it"
        )
        self.event_id = item.get("id") if isinstance(item.get("id"), str) else None
        written = item.get("type") if "specversion" in item else item.get("eventType")
        self.event_type = written if isinstance(written, str) else None


def events_in(path: Path) -> Iterator[Any]:
    """The events of one file as the app parses them (AmlEvent), or for one it cannot, the reason (str)."""
    from shared.events.model import EventRejected
    from shared.events.parse import parse_event

    try:
        decoded = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError) as error:
        yield f"cannot read it as JSON: {getattr(error, 'strerror', None) or error}"
        return
    for item in decoded if isinstance(decoded, list) else [decoded]:
        try:
            yield parse_event(item)
        except EventRejected as rejected:
            yield str(rejected)


def binding_for(item: dict[str, Any]) -> Any:
    """The object the Python worker hands an Event Grid function for one JSON event: built by
    azure-functions' own converter for the `eventGridTrigger` binding, from the JSON the host sends.
    Raises WorkerRefused where the worker's converter raises (an `eventTime` it cannot parse)."""
    from azure.functions.eventgrid import EventGridEventInConverter
    from azure.functions.meta import Datum

    try:
        return EventGridEventInConverter.decode(Datum(json.dumps(item), "json"), trigger_metadata={})
    except Exception as error:  # whatever the converter raises fails the invocation in Azure
        raise WorkerRefused(item, error) from error


def timer_request(*, past_due: bool = False) -> Any:
    """The `TimerRequest` the worker builds for a timer function, with azure-functions' own converter."""
    from azure.functions.meta import Datum
    from azure.functions.timer import TimerRequestConverter

    info = {"Schedule": {"AdjustForDST": True}, "ScheduleStatus": None, "IsPastDue": past_due}
    return TimerRequestConverter.decode(Datum(json.dumps(info), "json"), trigger_metadata={})


def function_for(item: Any) -> str | None:
    from shared.events.catalog import FUNCTION_FOR_EVENT_TYPE, full_event_type

    if not isinstance(item, dict):
        return None
    written = item.get("type") if "specversion" in item else item.get("eventType")
    event_type = full_event_type(written) if isinstance(written, str) else None
    return FUNCTION_FOR_EVENT_TYPE.get(event_type) if event_type else None


def replay_payload(
    body: bytes, functions: dict[str, Callable[[Any], None]], origin: str, concurrency: int = 1
) -> None:
    """Hand every event in one delivery body to its function; reports go to the engine's observers.
    With `concurrency` above 1, events are delivered that many at a time, as the worker's thread pool
    runs sync functions."""
    from shared.events.model import EventRejected
    from shared.worker import current_engine

    try:
        decoded = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        current_engine().reject(
            "replay", EventRejected("", f"{origin} is not JSON: {error}"), body.decode("utf-8", "replace")
        )
        return
    items = decoded if isinstance(decoded, list) else [decoded]
    if concurrency <= 1:
        for item in items:
            deliver(item, functions)
        return
    with ThreadPoolExecutor(concurrency, thread_name_prefix="worker") as pool:
        futures = [pool.submit(deliver, item, functions) for item in items]
    for future in futures:
        future.result()  # the first storage outage, after every delivery has had its turn


def deliver(item: Any, functions: dict[str, Callable[[Any], None]]) -> None:
    """One JSON event to its function, as the host and the worker would hand it over."""
    from shared.events.model import EventRejected
    from shared.events.parse import envelope_problem
    from shared.pipeline.reports import REFUSED, ActionReport, observed
    from shared.worker import DeliveryFailed, current_engine

    function = function_for(item)
    if function is None:
        event_id = item.get("id") if isinstance(item, dict) and isinstance(item.get("id"), str) else None
        current_engine().reject("replay", EventRejected("", envelope_problem(item), event_id), item)
        return
    try:
        binding = binding_for(item)
    except WorkerRefused as refused:
        observed(ActionReport(refused.event_id, refused.event_type, function, None, None, REFUSED, str(refused)))
        return
    try:
        functions[function](binding)
    except DeliveryFailed as error:
        if error.__cause__ is not None:  # storage down or routes broken: nothing was reported
            raise
        # otherwise each failed action has been reported; Event Grid would redeliver


@functools.cache
def _index() -> tuple[Any, ...]:
    """The app's own function index (which may be built only once per app)."""
    import function_app

    return tuple(function_app.app.get_functions())


def timer_functions() -> list[str]:
    """The names of the app's timer functions (flush_digests, check_expectations)."""
    return [
        f.get_function_name()
        for f in _index()
        if any(binding.get("type") == "timerTrigger" for binding in json.loads(f.get_function_json())["bindings"])
    ]


def indexed_functions() -> dict[str, Callable[[Any], None]]:
    """The app's functions by name, from its own index."""
    return {f.get_function_name(): f.get_user_function() for f in _index()}
