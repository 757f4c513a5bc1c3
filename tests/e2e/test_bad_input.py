"""Bad input: a corpus of broken payloads and a property-based fuzz of the parser.

The only outcome allowed for input that cannot be handled is the documented rejection
(`EventRejected` from parse_event, `RejectedInput` from parse_payload, a `rejected` report from the
functions, recorded and not raised); valid events next to bad ones are still handled.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scripts.local_host import replay_payload
from shared.events.model import AmlEvent, EventRejected
from shared.events.parse import parse_event
from shared.ledger.memory import MemoryLedger
from shared.pipeline.engine import Engine
from shared.pipeline.reports import observe
from shared.settings import Settings
from shared.worker import current_engine, load_routes
from tests.support.events import EVENTS, load_event
from tests.support.payloads import RejectedInput, parse_payload

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = [load_event(str(path.relative_to(EVENTS))) for path in sorted(EVENTS.glob("[ec]*/*.json"))]
RUN = load_event("eventgrid/run_status_changed_failed.json")
MODEL = load_event("eventgrid/model_registered.json")


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"next": value}
    return value


def body(value: Any) -> bytes:
    return json.dumps(value).encode()


CORPUS: dict[str, bytes] = {
    "truncated": body(RUN)[:57],
    "truncated array": b"[" + body(RUN) + b", {",
    "empty": b"",
    "whitespace": b"  \n ",
    "null": b"null",
    "number": b"42",
    "string": b'"RunStatusChanged"',
    "array of nulls": b"[null, null]",
    "all envelope fields null": body({key: None for key in RUN}),
    "id is a number": body(RUN | {"id": 12345}),
    "eventType is a list": body(RUN | {"eventType": ["Microsoft.MachineLearningServices.RunStatusChanged"]}),
    "topic is an object": body(RUN | {"topic": {"id": RUN["topic"]}}),
    "data is a number": body(RUN | {"data": 3}),
    "data fields of wrong types": body(RUN | {"data": {"runId": {"x": 1}, "runStatus": 7, "runTags": []}}),
    "nested beyond the JSON parser": b'{"data": ' + b"[" * 200_000 + b"]" * 200_000 + b"}",
    "deeply nested data (valid)": body(RUN | {"id": "deep", "data": RUN["data"] | {"runTags": nested(500)}}),
    "1 MB value (valid)": body(MODEL | {"id": "megabyte", "data": MODEL["data"] | {"ModelTags": {"x": "y" * 2**20}}}),
    "1 MB runId (valid)": body(RUN | {"id": "mb-run", "data": RUN["data"] | {"runId": "r" * 2**20}}),
    "not UTF-8": b'{"id": "\xff\xfe\xfd", "eventType": "RunStatusChanged"}',
    "UTF-16": json.dumps(RUN).encode("utf-16"),
    "lone surrogate": b'{"id": "\\ud800", "eventType": "x"}',
    "lone surrogate in a valid event": body(RUN | {"id": "surrogate-\ud800"}),
    "mixed valid and invalid": body([RUN, {"id": "no-type"}, None, 7, MODEL | {"topic": "nope"}, MODEL]),
}
# What the Python worker's converter refuses before any app code runs: in Azure the invocation fails,
# Event Grid retries and then dead-letters it; the app cannot record it.
WORKER_REFUSES: dict[str, bytes] = {
    "eventTime is a number": body(RUN | {"eventTime": 1700000000}),
    "eventTime is not a time": body(RUN | {"eventTime": "yesterday"}),
    "eventTime is a date only": body(RUN | {"eventTime": "2025-01-01"}),
    "eventTime has an offset": body(RUN | {"eventTime": "2025-01-01T00:00:00+02:00"}),
    "CloudEvent time is a number": body(load_event("cloudevents/run_status_changed_failed.json") | {"time": 17}),
}
VALID_IDS = {"deep", "megabyte", "mb-run", "surrogate-\ud800", RUN["id"], MODEL["id"]}


@pytest.mark.parametrize("name", CORPUS)
def test_the_parser_only_rejects(name: str) -> None:
    results = list(parse_payload(CORPUS[name]))
    assert results
    for result in results:
        assert isinstance(result, AmlEvent | RejectedInput)
        if isinstance(result, RejectedInput):
            assert result.reason  # says what is wrong
        else:
            assert result.id in VALID_IDS


def test_a_mixed_batch_keeps_its_valid_events() -> None:
    results = list(parse_payload(CORPUS["mixed valid and invalid"]))
    assert [type(r).__name__ for r in results] == [
        "RunStatusChanged", "RejectedInput", "RejectedInput", "RejectedInput", "RejectedInput", "ModelRegistered",
    ]  # fmt: skip
    assert results[4].reason.startswith("topic: ")


ROUTES = """
routes:
  - name: everything
    events: [RunStatusChanged, ModelRegistered]
    actions:
      - webhook: {url: "${HOOK_URL}/in", allow_private: true, retry: {attempts: 1}}
"""


@pytest.mark.parametrize("name", CORPUS)
def test_the_functions_record_bad_input_and_handle_the_valid(name, app_env, receiver, functions) -> None:
    app_env(ROUTES, HOOK_URL=receiver.url)
    with observe() as reports:
        replay_payload(CORPUS[name], functions, name)  # raises nothing: rejected is recorded, not raised
    assert reports and {report.status for report in reports} <= {"done", "rejected"}
    rejected = [report for report in reports if report.status == "rejected"]
    # One record per distinct rejected input (identical ones, like two nulls, are one record).
    assert len(list(current_engine().ledger.rejections())) == len({(r.event_id, r.detail) for r in rejected})
    delivered = {request.json()["event"]["id"] for request in receiver.requests}
    assert delivered == {report.event_id for report in reports if report.status == "done"}
    if name == "mixed valid and invalid":
        assert delivered == {RUN["id"], MODEL["id"]} and len(rejected) == 4


@pytest.mark.parametrize("name", WORKER_REFUSES)
def test_what_the_worker_refuses_is_reported_as_refused_before_the_app(name, app_env, receiver, functions) -> None:
    app_env(ROUTES, HOOK_URL=receiver.url)
    with observe() as reports:
        replay_payload(WORKER_REFUSES[name], functions, name)
    [report] = reports
    assert report.status == "refused" and not report.settled  # Event Grid retries, then dead-letters
    assert report.detail.startswith(("eventTime ", "time ")) and "before the app runs" in report.detail
    assert report.event_id == json.loads(WORKER_REFUSES[name])["id"]
    assert list(current_engine().ledger.rejections()) == [] and receiver.requests == []


# ---- property-based fuzz ------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
FIELD_NAMES = sorted({key for sample in SAMPLES for key in sample} | {"eventtype", "ID", "specversion"})
DATA_NAMES = sorted({key for sample in SAMPLES for key in (sample.get("data") or {})} | {"runstatus", "modelversion"})


@st.composite
def mutated_events(draw: st.DrawFn) -> Any:
    """A real sample with some envelope and data fields replaced by anything or removed."""
    event = json.loads(json.dumps(draw(st.sampled_from(SAMPLES))))
    for _ in range(draw(st.integers(1, 4))):
        where = event if draw(st.booleans()) or not isinstance(event.get("data"), dict) else event["data"]
        name = draw(st.sampled_from(FIELD_NAMES if where is event else DATA_NAMES))
        if draw(st.booleans()):
            where.pop(name, None)
        else:
            where[name] = draw(json_values)
    return event


def _parse_or_rejection(item: Any) -> AmlEvent | EventRejected:
    try:
        return parse_event(item)
    except EventRejected as rejected:
        return rejected


@settings(max_examples=300, deadline=None)
@given(mutated_events())
def test_parse_event_returns_an_event_or_raises_event_rejected(event: Any) -> None:
    result = _parse_or_rejection(event)
    if isinstance(result, EventRejected):
        assert str(result)  # names the problem


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300) | json_values.map(body) | mutated_events().map(body))
def test_parse_payload_never_raises(payload: bytes) -> None:
    for result in parse_payload(payload):
        assert isinstance(result, AmlEvent | RejectedInput)


DRY_RUN = Engine(
    Settings.from_environ({"ROUTES_FILE": str(ROOT / "routes.yaml"), "ALERT_WEBHOOK_URL": "https://example.invalid/"}),
    lambda: load_routes(ROOT / "routes.yaml", {"ALERT_WEBHOOK_URL": "https://example.invalid/"}),
    MemoryLedger(),
    dry_run=True,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_events())
def test_the_engine_plans_or_rejects_any_mutated_event(event: Any) -> None:
    """Routes' conditions see the same odd values the parser let through; nothing may crash there."""
    parsed = _parse_or_rejection(event)
    function = parsed.function if isinstance(parsed, AmlEvent) else "run_events"
    for report in DRY_RUN.handle(function, event):
        assert report.status in ("planned", "rejected", "unrouted")


def test_a_miscased_cloudevents_attribute_is_rejected_for_what_it_is(app_env, receiver, functions) -> None:
    app_env(ROUTES, HOOK_URL=receiver.url)
    event = load_event("cloudevents/run_status_changed_failed.json")
    event["specVersion"] = event.pop("specversion")  # as rest-api-specs' examples spell it
    with observe() as reports:
        replay_payload(body(event), functions, "miscased")
    [report] = reports
    assert report.status == "rejected" and report.event_id == event["id"]
    assert report.detail.startswith("specVersion: CloudEvents attribute names are lower case")
