"""Which inputs the parser must reject (and with which field named), and which it must keep: pinned
one by one, so that removing a rejection, or rejecting too much, fails a test."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.events.model import EVENT_CLASSES, MAX_ID_CHARS, EventRejected
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
