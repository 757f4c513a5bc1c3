"""Blob, policy and resource events: samples from both schemas, real payloads' quirks, rejections."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from azure.functions.eventgrid import EventGridEventInConverter
from azure.functions.meta import Datum
from hypothesis import given
from hypothesis import strategies as st

from scripts.local_host import binding_for
from shared.events.arm import parse_resource_id
from shared.events.blobs import common_folder, parse_datastores
from shared.events.catalog import FUNCTION_EVENT_TYPES, FUNCTION_FOR_EVENT_TYPE
from shared.events.fields import path_problem
from shared.events.model import EventRejected
from shared.events.parse import parse_event
from tests.support.events import EVENTS, load_event

SOURCES = EVENTS / "sources"
FUNCTION = {"blob": "data_events", "policy": "policy_events", "resource": "resource_events"}
NAMES = sorted(path.stem for path in (SOURCES / "eventgrid").glob("*.json"))


def read(relative: str) -> tuple[type, Any, dict[str, Any], dict[str, Any]]:
    """A sample through the app's parser: (class, workspace, typed fields, data as routes see it)."""
    event = parse_event(load_event(f"sources/{relative}"))
    return type(event), event.workspace, dict(event.fields), dict(event.data)


@pytest.mark.parametrize("name", NAMES)
def test_both_schemas_and_the_hosts_binding_objects_give_the_same_event(name: str) -> None:
    grid, cloud = load_event(f"sources/eventgrid/{name}.json"), load_event(f"sources/cloudevents/{name}.json")
    # As the Python worker decodes what the host sends (TypedData.json) for an Event Grid trigger.
    decoded = EventGridEventInConverter.decode(Datum(json.dumps(grid), "json"), trigger_metadata={})
    events = [parse_event(grid), parse_event(cloud), parse_event(binding_for(cloud)), parse_event(decoded)]
    assert len({(type(e), e.workspace, e.topic, e.subject, e.event_time) for e in events}) == 1
    assert all(e.fields == events[0].fields and e.data == events[0].data for e in events)
    assert [e.schema for e in events] == ["EventGrid", "CloudEvents", "CloudEvents", "EventGrid"]
    assert events[0].function == FUNCTION[name.split("_")[0]]


def test_blob_fields() -> None:
    _, workspace, fields, data = read("eventgrid/blob_created.json")
    assert workspace is None
    assert fields["account"] == "stcontosomldata"
    assert fields["container"] == "training-data"
    assert fields["blob_path"] == "churn/2025-03-04/part-0001.parquet"
    assert fields["folder"] == "churn/2025-03-04/"
    assert fields["size"] == 1048576
    assert fields["etag"] == '"0x8D4BCC2E4835CD0"'
    assert fields["content_type"] == "application/octet-stream"
    assert fields["datastore"] is None
    assert data["container"] == "training-data" and data["blobPath"] == fields["blob_path"]
    _, _, deleted, _ = read("eventgrid/blob_deleted.json")
    assert deleted["size"] is None


def test_blob_subject_wins_over_url_and_lengths_may_be_strings() -> None:
    _, _, fields, _ = read("quirks/blob_created_subject_url_disagree.json")
    assert fields["container"] == "test-container"
    _, _, fields, _ = read("quirks/blob_created_encoded_url_string_length.json")
    assert fields["blob_path"] == "raw data/März 2025/file #1.csv"
    assert fields["size"] == 2048


def test_datastore_from_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.settings import current_settings

    uri = "azureml://subscriptions/s1/resourcegroups/rg1/workspaces/ws1/datastores/training_data"
    monkeypatch.setenv("DATASTORES", f"other/x=bad, STcontosomldata/training-data={uri}")
    current_settings.cache_clear()
    try:
        _, workspace, fields, data = read("quirks/blob_created_adls_dfs_flushwithclose.json")
    finally:
        monkeypatch.delenv("DATASTORES")
        current_settings.cache_clear()
    assert workspace is not None and (workspace.subscription_id, workspace.resource_group, workspace.name) == (
        "s1", "rg1", "ws1",
    )  # fmt: skip
    assert fields["datastore"] == data["datastore"] == "training_data"
    assert fields["datastore_uri"] == f"{uri}/paths/churn/2025-03-04/part-0002.parquet"


def test_datastore_setting_problems_name_the_entry() -> None:
    found, problems = parse_datastores(
        "acct/cont=https://x, acct=azureml://subscriptions/s/resourcegroups/r/workspaces/w/datastores/d"
    )
    assert found == {}
    assert len(problems) == 2 and "'acct/cont=https://x'" in problems[0]


def test_policy_fields_and_names() -> None:
    _, workspace, fields, data = read("eventgrid/policy_state_changed.json")
    assert workspace is not None and workspace.name == "mlw-contoso-prod"
    assert fields["compliance_state"] == "NonCompliant"
    assert fields["policy_assignment_name"] == "aml-no-public-network-3fq7x2"
    assert fields["policy_definition_name"] == "438c38d2-3772-465a-a9cc-7a6666a275ce"
    assert fields["resource_type"] == "Microsoft.MachineLearningServices/workspaces"
    assert fields["policy_definition_reference_id"] is None
    assert fields["timestamp"].isoformat().startswith("2025-03-04T11:40:02.4")
    assert data["resourceType"] == "Microsoft.MachineLearningServices/workspaces"


def test_policy_from_a_management_group_with_lowercase_ids() -> None:
    _, workspace, fields, data = read("quirks/policy_state_management_group_lowercase_ids.json")
    assert fields["compliance_state"] == data["complianceState"] == "NonCompliant"
    assert fields["resource_type"] == "microsoft.machinelearningservices/workspaces/computes"
    assert fields["resource_name"] == "gpu-cluster"
    assert fields["policy_definition_reference_id"] == "amlComputeLocalAuth"
    assert workspace is not None and workspace.name == "mlw-contoso-prod"


def test_resource_failure_fields() -> None:
    cls, workspace, fields, data = read("eventgrid/resource_write_failure.json")
    assert cls.STATUS == "Failed" and fields["operation"] == "Write"
    assert fields["resource_type"] == "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments"
    assert fields["resource_name"] == "blue"
    assert fields["caller"] == "dana@contoso.com"
    assert fields["correlation_id"] == "7f3c1e2d-9a8b-4c7d-8e6f-5a4b3c2d1e0f"
    assert fields["operation_name"] == "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments/write"
    assert (fields["error_code"], fields["error_message"]) == (None, None)
    assert workspace is not None and workspace.name == "mlw-contoso-prod"
    assert "claims" not in data and data["caller"] == "dana@contoso.com"  # the token's claims are not kept


def test_resource_outcome_is_the_event_types_not_the_payloads_status() -> None:
    cls, _, fields, data = read("quirks/resource_write_failure_status_succeeded_string_claims.json")
    assert cls.STATUS == data["outcome"] == "Failed"
    assert fields["operation_status"] == "Succeeded"
    assert fields["caller"] == "application 7c4e2f1a-3b5d-4e6f-8a9b-0c1d2e3f4a5b"


def test_resource_error_from_the_status_message_when_present() -> None:
    _, _, fields, data = read("quirks/resource_write_failure_empty_objects_status_message.json")
    assert fields["error_code"] == data["errorCode"] == "ResourceNotReady"
    assert fields["error_message"].startswith("User container has crashed")
    assert fields["caller"] is None


@pytest.mark.parametrize(
    ("name", "field"),
    [
        ("blob_subject_not_a_blob", "subject"),
        ("blob_topic_not_storage_account", "topic"),
        ("policy_missing_compliance_state", "data.complianceState"),
        ("resource_uri_not_an_id", "data.resourceUri"),
    ],
)
def test_rejections_name_the_field(name: str, field: str) -> None:
    with pytest.raises(EventRejected) as rejected:
        read(f"bad/{name}.json")
    assert rejected.value.field == field


def test_a_cloudevent_rejection_names_its_own_attribute() -> None:
    cloud = load_event("sources/cloudevents/blob_created.json") | {"source": "/subscriptions/s/resourceGroups/rg"}
    with pytest.raises(EventRejected) as rejected:
        parse_event(cloud)
    assert rejected.value.field == "source" and "is not a storage account id" in str(rejected.value)


def test_a_type_from_a_source_that_the_app_does_not_take_is_rejected() -> None:
    with pytest.raises(EventRejected) as rejected:
        read("bad/blob_tier_changed_not_taken.json")
    assert str(rejected.value) == "eventType: 'Microsoft.Storage.BlobTierChanged' is not an event type this app takes"


def test_resource_ids() -> None:
    group = parse_resource_id("/subscriptions/s/resourceGroups/rg")
    assert group is not None and group.type == "Microsoft.Resources/resourceGroups" and group.names == ()
    nested = parse_resource_id("/subscriptions/s/resourcegroups/rg/providers/A.B/x/1/y/2/providers/M.Authz/locks/l")
    assert nested is not None and nested.type == "M.Authz/locks" and nested.name == "l"
    for bad in ("", "/subscriptions", "/subscriptions/s/resourceGroups/rg/providers/A.B/x", "x" * 3000):
        assert parse_resource_id(bad) is None


@given(st.lists(st.lists(st.sampled_from("ab"), min_size=1, max_size=4).map("/".join), min_size=1, max_size=6))
def test_common_folder_holds_every_path_and_is_a_folder(paths: list[str]) -> None:
    folder = common_folder(paths)
    assert all(path.startswith(folder) for path in paths)
    assert folder == "" or folder.endswith("/")
    # the deepest: one level more would leave some path out
    deeper = {path[len(folder) :].split("/")[0] for path in paths if "/" in path[len(folder) :]}
    assert len(deeper) != 1 or any("/" not in path[len(folder) :] for path in paths)


def test_every_sample_has_both_schemas() -> None:
    eventgrid = {path.name for path in Path(SOURCES / "eventgrid").glob("*.json")}
    assert eventgrid == {path.name for path in Path(SOURCES / "cloudevents").glob("*.json")}


def test_titles_say_what_happened() -> None:
    titles = {name: parse_event(load_event(f"sources/eventgrid/{name}.json")).title for name in NAMES}
    assert titles["resource_action_failure"] == "cpu-instance-dana: start failed"
    assert titles["resource_delete_success"] == "gpu-cluster: delete succeeded"
    assert titles["policy_state_deleted"] == "mlw-contoso-prod: no longer evaluated (aml-no-public-network-3fq7x2)"
    odd = load_event("sources/eventgrid/resource_action_failure.json")
    odd["data"]["operationName"] = "restart"
    assert parse_event(odd).title == "cpu-instance-dana: restart failed"


def test_route_paths_the_new_types_lack_are_named() -> None:
    blob = ("Microsoft.Storage.BlobCreated",)
    assert path_problem("data.container", blob) is None and path_problem("data.CONTENTLENGTH", blob) is None
    assert path_problem("data.storageDiagnostics.batchId", blob) is None
    problem = path_problem("data.containr", blob)
    assert problem is not None and "BlobCreated events have no such field (did you mean data.container?" in problem
    resource = ("Microsoft.Resources.ResourceWriteFailure",)
    assert path_problem("data.resourceType", resource) is None and path_problem("data.outcome", resource) is None
    assert path_problem("data.complianceState", resource) is not None


@pytest.mark.parametrize(
    "event_type",
    [t for f in ("data_events", "policy_events", "resource_events") for t in FUNCTION_EVENT_TYPES[f]],
)
def test_every_type_the_new_functions_take_parses_in_both_schemas(event_type: str) -> None:
    """The shipped example of each of the 14 types (shared/example_events.json), as sent in either schema."""
    examples = json.loads((Path(__file__).resolve().parents[4] / "shared" / "example_events.json").read_text())
    grid = examples[event_type]
    cloud = {"specversion": "1.0", "id": grid["id"], "source": grid["topic"], "subject": grid["subject"],
             "type": grid["eventType"], "time": grid["eventTime"], "data": grid["data"]}  # fmt: skip
    one, other = parse_event(grid), parse_event(cloud)
    assert one.event_type == other.event_type == event_type
    assert one.fields == other.fields and one.function == FUNCTION_FOR_EVENT_TYPE[event_type]
    assert one.title and one.facts() and one.studio_url.startswith("https://")


def test_a_malformed_datastores_setting_fails_validation(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from scripts import validate_routes

    routes = Path(__file__).resolve().parents[4] / "routes.yaml"
    monkeypatch.setenv("DATASTORES", "stcontosomldata/training-data=https://not-a-datastore")
    assert validate_routes.main(["--routes", str(routes)]) == 1
    assert "DATASTORES: 'stcontosomldata/training-data=https://not-a-datastore' is not" in capsys.readouterr().err


def test_times_in_fields_are_iso_8601_in_json() -> None:
    event = parse_event(load_event("sources/eventgrid/policy_state_changed.json"))
    assert event.to_dict()["fields"]["timestamp"].startswith("2025-03-04T11:40:02.4")
