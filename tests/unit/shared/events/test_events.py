"""Typed events from both schemas, including the quirks of real payloads, and every rejection."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import azure.functions as func
import pytest

from scripts.local_host import binding_for
from shared.events.model import (
    DatasetDriftDetected,
    EventRejected,
    ModelDeployed,
    ModelRegistered,
    RunCompleted,
    RunStatusChanged,
)
from shared.events.parse import parse_event
from tests.support.events import EVENTS, load_event
from tests.support.payloads import RejectedInput, parse_payload

SAMPLES = {
    "run_completed": RunCompleted,
    "run_status_changed_failed": RunStatusChanged,
    "model_registered": ModelRegistered,
    "model_deployed": ModelDeployed,
    "dataset_drift_detected": DatasetDriftDetected,
}


@pytest.mark.parametrize("name", SAMPLES)
def test_both_schemas_give_the_same_typed_event(name: str) -> None:
    grid = parse_event(load_event(f"eventgrid/{name}.json"))
    cloud = parse_event(load_event(f"cloudevents/{name}.json"))
    assert type(grid) is type(cloud) is SAMPLES[name]
    assert (grid.schema, cloud.schema) == ("EventGrid", "CloudEvents")
    assert grid.fields == cloud.fields
    assert grid.workspace == cloud.workspace
    assert grid.workspace.name == "mlw-contoso-prod"
    assert grid.workspace.resource_group == "rg-mlops-prod"
    assert grid.workspace.subscription_id == "11111111-2222-3333-4444-555555555555"
    assert grid.studio_url == cloud.studio_url
    assert grid.studio_url.startswith("https://ml.azure.com/")
    assert (
        "wsid=/subscriptions/11111111-2222-3333-4444-555555555555/resourcegroups/rg-mlops-prod/workspaces/mlw-contoso-prod"
        in grid.studio_url
    )


@pytest.mark.parametrize("name", SAMPLES)
def test_the_functions_binding_objects_parse_like_raw_json(name: str) -> None:
    raw = load_event(f"eventgrid/{name}.json")
    binding = binding_for(raw)
    assert isinstance(binding, func.EventGridEvent)
    assert parse_event(binding).fields == parse_event(raw).fields
    cloud = binding_for(load_event(f"cloudevents/{name}.json"))
    assert isinstance(cloud, func.CloudEvent)
    assert parse_event(cloud).fields == parse_event(raw).fields


def test_run_event_fields_and_links() -> None:
    event = parse_event(load_event("eventgrid/run_status_changed_failed.json"))
    assert isinstance(event, RunStatusChanged)
    assert event.run_id == "churn_train_1717000500_ef56gh78"
    assert event.experiment_name == "churn-training"
    assert event.run_status == "Failed"
    assert event.run_tags == {"team": "growth"}
    assert event.event_time == datetime(2025, 3, 4, 10, 2, 11, tzinfo=UTC)
    assert event.studio_url.startswith("https://ml.azure.com/runs/churn_train_1717000500_ef56gh78?wsid=")
    assert ("Status", "Failed") in event.facts()


def test_lowercase_status_is_normalised_and_null_run_type_accepted() -> None:
    event = parse_event(load_event("quirks/run_status_lowercase_null_runtype.json"))
    assert event.run_status == "Failed"
    assert event.data["runStatus"] == "Failed"  # what routes and templates see
    assert event.run_type is None
    assert event.data["CreatedBy"] == {"userName": "Ada"}  # unknown fields are kept, not refused


def test_model_version_as_number_or_string_and_camelcase_keys() -> None:
    number = parse_event(load_event("eventgrid/model_registered.json"))
    text = parse_event(load_event("quirks/model_registered_camelcase_string_version.json"))
    assert (number.model_name, number.model_version) == ("churn-classifier", "7")
    assert (text.model_name, text.model_version) == ("fraud-detector", "12")
    assert text.model_tags == {}
    assert number.studio_url.startswith("https://ml.azure.com/model/churn-classifier:7/details?wsid=")


def test_pascalcase_run_keys_and_null_tags() -> None:
    event = parse_event(load_event("quirks/run_completed_pascalcase_null_tags.json"))
    assert event.run_id == "prod_churn_1717200000_99aa"
    assert event.experiment_name == "prod-churn"
    assert event.run_tags == {}
    assert event.status == "Completed"


def test_model_ids_are_a_list() -> None:
    assert parse_event(load_event("eventgrid/model_deployed.json")).model_ids == [
        "churn-classifier:6",
        "churn-classifier:7",
    ]
    single = parse_event(load_event("quirks/model_deployed_single_model_extra_fields.json"))
    assert single.model_ids == ["churn-classifier:7"]
    assert single.service_compute_type == "Managed"


def test_drift_coefficient_as_string_and_null_end_time() -> None:
    event = parse_event(load_event("quirks/drift_schema_page_subject_string_coefficient.json"))
    assert event.drift_coefficient == pytest.approx(0.8123)
    assert event.end_time is None
    assert event.studio_url.startswith("https://ml.azure.com/runs/drift_weekly_1717200000_5e6f?")


def test_empty_data_version_and_short_type() -> None:
    event = parse_event(load_event("eventgrid/run_completed.json"))
    assert event.data_version == ""
    assert event.short_type == "RunCompleted"
    assert event.function == "run_events"
    as_json = json.loads(json.dumps(event.to_dict()))
    assert as_json["fields"]["run_id"] == "churn_train_1717000000_ab12cd34"
    assert as_json["workspace"]["name"] == "mlw-contoso-prod"


@pytest.mark.parametrize(
    ("file", "field", "message"),
    [
        ("bad/missing_id.json", "id", "is missing"),
        ("bad/missing_event_type.json", "eventType", "is missing"),
        ("bad/data_not_object.json", "data", "not JSON"),
        ("bad/unknown_event_type.json", "eventType", "'Microsoft.Storage.BlobTierChanged' is not an event type"),
        ("bad/topic_not_workspace.json", "topic", "is not an Azure ML workspace id"),
    ],
)
def test_each_rejection_names_the_field(file: str, field: str, message: str) -> None:
    with pytest.raises(EventRejected) as caught:
        parse_event(load_event(file))
    assert caught.value.field == field
    assert message in str(caught.value)
    assert str(caught.value).startswith(f"{field}: ")


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"runId": "r", "runStatus": None}, "data.runStatus"),
        ({"runId": "r", "runStatus": "Failed", "runTags": "team=growth"}, "data.runTags"),
        ({"runStatus": "Failed"}, "data.runId"),
        ({"runId": ["r"], "runStatus": "Failed"}, "data.runId"),
        ([1, 2], "data"),
        (None, "data"),
    ],
)
def test_wrong_types_in_data_are_rejected_by_name(data: object, field: str) -> None:
    event = load_event("eventgrid/run_status_changed_failed.json") | {"data": data}
    with pytest.raises(EventRejected) as caught:
        parse_event(event)
    assert caught.value.field == field
    assert caught.value.event_id == event["id"]


def test_cloudevents_fields_are_named_in_their_schema() -> None:
    event = load_event("cloudevents/run_completed.json") | {"source": "/subscriptions/x/resourceGroups/y"}
    with pytest.raises(EventRejected, match=r"^source: "):
        parse_event(event)


def test_payload_with_mixed_valid_and_invalid_events() -> None:
    good = load_event("eventgrid/model_registered.json")
    body = json.dumps([good, {"id": "no-type"}, 42, load_event("cloudevents/run_completed.json")])
    results = list(parse_payload(body))
    assert [type(r).__name__ for r in results] == ["ModelRegistered", "RejectedInput", "RejectedInput", "RunCompleted"]
    assert results[1].reason == "eventType: is missing" and results[1].event_id == "no-type"


@pytest.mark.parametrize("body", [b"\xff\xfe not utf-8", b'[{"id": "x",', b"", b"[" * 100_000])
def test_unreadable_payloads_are_one_rejection(body: bytes) -> None:
    (result,) = parse_payload(body)
    assert isinstance(result, RejectedInput)
    assert "payload is not" in result.reason


def test_every_sample_file_is_json() -> None:
    for path in EVENTS.rglob("*.json"):
        if path.parent.name != "bad":
            json.loads(path.read_text())
