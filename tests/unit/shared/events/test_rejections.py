"""Which inputs the parser must reject (and with which field named), and which it must keep: pinned
one by one, so that removing a rejection, or rejecting too much, fails a test."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.events.model import EVENT_CLASSES, MAX_ID_CHARS, MODEL_MONITOR_SOURCE, EventRejected
from shared.events.parse import parse_event
from tests.support.events import load_event

RUN = load_event("eventgrid/run_status_changed_failed.json")
MODEL = load_event("eventgrid/model_registered.json")
DEPLOYED = load_event("eventgrid/model_deployed.json")
DRIFT = load_event("eventgrid/dataset_drift_detected.json")


def changed(event: dict[str, Any], **envelope: Any) -> dict[str, Any]:
    return copy.deepcopy(event) | envelope


def with_data(event: dict[str, Any], **data: Any) -> dict[str, Any]:
    result = copy.deepcopy(event)
    result["data"].update(data)
    return result


def without(event: dict[str, Any], key: str) -> dict[str, Any]:
    result = copy.deepcopy(event)
    del result["data"][key]
    return result


MUST_REJECT = [
    pytest.param(changed(RUN, id=None), "id", id="id missing"),
    pytest.param(changed(RUN, id="  "), "id", id="id blank"),
    pytest.param(changed(RUN, id=7), "id", id="id a number"),
    pytest.param(changed(RUN, id="i" * (MAX_ID_CHARS + 1)), "id", id="id too long"),
    pytest.param(changed(RUN, eventType="Microsoft.MachineLearningServices.RunExploded"), "eventType", id="type"),
    pytest.param(changed(RUN, topic="/subscriptions/x"), "topic", id="topic not a workspace"),
    pytest.param(changed(RUN, data=3), "data", id="data a number"),
    pytest.param(changed(RUN, data="{not json"), "data", id="data a non-JSON string"),
    pytest.param(changed(RUN, eventTime="yesterday"), "eventTime", id="eventTime unreadable"),
    pytest.param(changed(RUN, eventTime=17), "eventTime", id="eventTime a number"),
    pytest.param(changed(RUN, eventTime="0001-01-01T00:00:00+14:00"), "eventTime", id="eventTime before UTC min"),
    pytest.param(changed(RUN, eventTime="9999-12-31T23:59:59-14:00"), "eventTime", id="eventTime after UTC max"),
    pytest.param(with_data(DRIFT, DriftCoefficient="high"), "data.DriftCoefficient", id="coefficient not a number"),
    pytest.param(with_data(DRIFT, DriftCoefficient="NaN"), "data.DriftCoefficient", id="coefficient NaN"),
    pytest.param(with_data(DRIFT, DriftCoefficient="-Infinity"), "data.DriftCoefficient", id="coefficient -inf"),
    pytest.param(with_data(DRIFT, DriftCoefficient=True), "data.DriftCoefficient", id="coefficient a bool"),
    pytest.param(with_data(RUN, runTags=["a"]), "data.runTags", id="tags a list"),
    pytest.param(with_data(RUN, runId={"x": 1}), "data.runId", id="runId an object"),
    pytest.param(with_data(RUN, runId=True), "data.runId", id="runId a bool"),
    pytest.param(with_data(RUN, runId=" "), "data.runId", id="runId blank"),
]


@pytest.mark.parametrize(("raw", "field"), MUST_REJECT)
def test_what_must_be_rejected_is_rejected_naming_the_field(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(EventRejected) as rejected:
        parse_event(raw)
    assert rejected.value.field == field
    # The id is known to the rejection once it was read (a rejection of the id itself has none).
    assert rejected.value.event_id == (None if field == "id" else raw["id"])


MUST_KEEP = [
    pytest.param(changed(RUN, id=" ws-1 "), id="id with spaces, kept as sent"),
    pytest.param(changed(RUN, id="\ud800"), id="id a lone surrogate"),
    pytest.param(changed(RUN, id="a/b?c#d\\e\x00"), id="id with key-forbidden characters"),
    pytest.param(changed(RUN, id="i" * MAX_ID_CHARS), id="id at the length limit"),
    pytest.param(changed(RUN, eventTime="0001-01-01T00:00:00+00:00"), id="eventTime at UTC min"),
    pytest.param(changed(RUN, eventTime=None), id="eventTime absent"),
    pytest.param(with_data(DRIFT, DriftCoefficient="0.5"), id="coefficient as text"),
    pytest.param(with_data(MODEL, ModelVersion=7), id="model version a number"),
]


@pytest.mark.parametrize("raw", MUST_KEEP)
def test_what_must_be_kept_is_kept_exactly(raw: dict[str, Any]) -> None:
    event = parse_event(raw)
    assert event.id == raw["id"]


REQUIRED = {
    "RunStatusChanged": (RUN, {"runId", "runStatus"}),
    "ModelRegistered": (MODEL, {"ModelName", "ModelVersion"}),
    "ModelDeployed": (DEPLOYED, {"ServiceName"}),
    "DatasetDriftDetected": (DRIFT, {"DataDriftId"}),
}


@pytest.mark.parametrize("short_type", REQUIRED)
def test_required_fields_are_exactly_the_documented_ones(short_type: str) -> None:
    sample, required = REQUIRED[short_type]
    declared = {key for _, key, _, _ in EVENT_CLASSES[sample["eventType"]].FIELDS}
    for key in declared:
        present = next((written for written in sample["data"] if written.lower() == key.lower()), None)
        if present is None:
            continue
        if key in required:
            with pytest.raises(EventRejected) as rejected:
                parse_event(without(sample, present))
            assert rejected.value.field == f"data.{key}"
        else:
            assert parse_event(without(sample, present)).id == sample["id"], f"{key} is optional"
    assert required <= declared


@given(st.text(min_size=1, max_size=60).filter(lambda text: text.strip()))
def test_every_non_blank_id_is_kept_exactly(event_id: str) -> None:
    assert parse_event(changed(RUN, id=event_id)).id == event_id


@given(st.text(max_size=40), st.text(max_size=40))
def test_distinct_ids_have_distinct_keys(left: str, right: str) -> None:
    if left.strip() and right.strip() and left != right:
        assert parse_event(changed(RUN, id=left)).key != parse_event(changed(RUN, id=right)).key


# ---- what each schema's envelope becomes, and the words of each rejection ------------------------------

CLOUD = load_event("cloudevents/run_status_changed_failed.json")


def test_a_cloudevent_s_envelope_fields_are_read() -> None:
    event = parse_event(CLOUD | {"dataversion": "1.0"})
    assert (event.id, event.subject, event.schema, event.data_version) == (
        CLOUD["id"], CLOUD["subject"], "CloudEvents", "1.0")  # fmt: skip
    assert event.event_time is not None and event.event_time.isoformat().startswith("2025-03-04T10:02:11")


def test_the_functions_binding_objects_are_read_as_their_json() -> None:
    from scripts.local_host import binding_for

    grid = parse_event(binding_for(RUN | {"dataVersion": "2"}))
    assert (grid.id, grid.subject, grid.schema, grid.data_version) == (RUN["id"], RUN["subject"], "EventGrid", "2")
    assert grid.event_time is not None and grid.run_status == "Failed"

    import azure.functions as func

    cloud = parse_event(func.CloudEvent(id=CLOUD["id"], source=CLOUD["source"], specversion="1.0", type=CLOUD["type"],
                                        subject=CLOUD["subject"], time=CLOUD["time"], data=CLOUD["data"]))  # fmt: skip
    assert (cloud.id, cloud.subject, cloud.schema) == (CLOUD["id"], CLOUD["subject"], "CloudEvents")
    assert cloud.event_time is not None and cloud.run_id == CLOUD["data"]["runId"]


def monitor_signal(**data: Any) -> dict[str, Any]:
    return with_data(DRIFT, Source=MODEL_MONITOR_SOURCE, **data)


WORDS = [
    pytest.param(42, "an event must be a JSON object, got int", id="not an object"),
    pytest.param(changed(RUN, id=None), "id: is missing", id="id missing"),
    pytest.param(changed(RUN, id=[1]), "id: must be a string, got list", id="id a list"),
    pytest.param(changed(RUN, id="i" * 1025), "id: is 1,025 characters long; at most 1,024 are accepted", id="long id"),
    pytest.param(changed(RUN, eventTime=17), "eventTime: must be an ISO 8601 string, got int", id="time a number"),
    pytest.param(changed(RUN, eventTime="soon"), "eventTime: is not an ISO 8601 time: 'soon'", id="time unreadable"),
    pytest.param(changed(RUN, eventTime="0001-01-01T00:00:00+14:00"),
                 "eventTime: is out of range once converted to UTC: 0001-01-01T00:00:00+14:00", id="time edge"),
    pytest.param(changed(RUN, subject=7), "subject: must be a string, got int", id="subject a number"),
    pytest.param(without(RUN, "runId"), "data.runId: is required for this event type but missing or null", id="req"),
    pytest.param(with_data(RUN, runId="  "), "data.runId: is required for this event type but empty", id="empty"),
    pytest.param(with_data(RUN, runId=[1]), "data.runId: must be a string, got list", id="string a list"),
    pytest.param(with_data(RUN, runTags=[1]), "data.runTags: must be an object, got list", id="object a list"),
    pytest.param(with_data(DRIFT, DriftCoefficient=False), "data.DriftCoefficient: must be a number, got bool",
                 id="number a bool"),
    pytest.param(with_data(DRIFT, DriftCoefficient="x"), "data.DriftCoefficient: must be a number, got 'x'",
                 id="number text"),
    pytest.param(with_data(DRIFT, DriftCoefficient="nan"), "data.DriftCoefficient: must be a finite number, got 'nan'",
                 id="number nan"),
    pytest.param(changed(RUN, data=3), "data: must be an object, got int", id="data a number"),
    pytest.param(changed(RUN, data="{x"), "data: is a string that is not JSON", id="data not JSON"),
    pytest.param(CLOUD | {"type": "Microsoft.X.Y"}, "type: 'Microsoft.X.Y' is not an event type this app takes",
                 id="cloud type"),
    pytest.param(monitor_signal(Violations=[1, 2]), "data.Violations: must be a list of objects", id="rows items"),
    pytest.param(monitor_signal(Violations={"a": 1}), "data.Violations: must be a list of objects", id="rows object"),
]  # fmt: skip


@pytest.mark.parametrize(("raw", "words"), WORDS)
def test_each_rejection_says_what_is_wrong_in_its_words(raw: Any, words: str) -> None:
    with pytest.raises(EventRejected) as rejected:
        parse_event(raw)
    assert str(rejected.value) == words
    assert rejected.value.field == (words.split(":", 1)[0] if isinstance(raw, dict) else "")


def test_envelope_fields_that_may_be_absent_or_odd() -> None:
    no_subject = {key: value for key, value in RUN.items() if key != "subject"}
    assert parse_event(no_subject).subject == ""
    assert parse_event(changed(RUN, dataVersion=7)).data_version == ""
    assert parse_event(changed(RUN, dataVersion="3")).data_version == "3"
    assert parse_event(changed(RUN, eventTime="")).event_time is None


def test_optional_fields_that_are_absent_read_as_empty_of_their_kind() -> None:
    bare = parse_event(changed(RUN, data={"runId": "r", "runStatus": "failed"}))
    assert (bare.run_tags, bare.experiment_name, bare.run_status) == ({}, None, "Failed")
    assert parse_event(with_data(RUN, runStatus="Exploded")).run_status == "Exploded"  # unknown: kept as sent
    deployed = parse_event(without(DEPLOYED, next(k for k in DEPLOYED["data"] if k.lower() == "modelids")))
    assert deployed.model_ids == []
    signal = parse_event(monitor_signal(Violations=[{"group": "age"}]))
    assert signal.violations == [{"group": "age"}]
    assert parse_event(monitor_signal()).violations == []
