"""Blob, policy and resource events end to end: through the app's own functions (the host's decoder),
routes, the ledger on Azurite, messages, replay, and the debounced data trigger (a burst of uploads as one
digest starting one pipeline job) against the local Azure ML (tests/support/azureml_fake.py)."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import uuid
from datetime import timedelta
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest

from handlers.common.notice import Notice
from handlers.slack import slack_message
from handlers.teams import adaptive_card
from scripts import history as history_cli
from scripts import silence as silence_cli
from shared.events.parse import parse_event
from shared.platform.clock import now as clock_now
from shared.routing.routes import RoutesError
from shared.worker import parse_routes
from tests.support.events import EVENTS, load_event

ROOT = Path(__file__).resolve().parents[2]
SOURCES = EVENTS / "sources"
FUNCTION_OF = {"blob": "data_events", "policy": "policy_events", "resource": "resource_events"}
SAMPLES = sorted(
    f"{schema}/{path.name}" for schema in ("eventgrid", "cloudevents") for path in (SOURCES / schema).glob("*.json")
)
WORKSPACE = (
    "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/rg-mlops-prod"
    "/providers/Microsoft.MachineLearningServices/workspaces/mlw-contoso-prod"
)
DATASTORE = (
    "azureml://subscriptions/11111111-2222-3333-4444-555555555555/resourcegroups/rg-mlops-prod"
    "/workspaces/mlw-contoso-prod/datastores/training_data"
)

EVERY_TYPE = """
routes:
  - name: data
    events: [BlobCreated, BlobDeleted]
    actions: [log]
  - name: compliance
    events: [PolicyStateCreated, PolicyStateChanged, PolicyStateDeleted]
    actions: [log]
  - name: operations
    events: [ResourceWriteSuccess, ResourceWriteFailure, ResourceDeleteSuccess, ResourceActionFailure]
    actions: [log]
"""


def function_for(sample: str) -> str:
    return FUNCTION_OF[Path(sample).stem.split("_")[0]]


@pytest.mark.parametrize("sample", SAMPLES)
def test_each_sample_through_its_function(app_env, deliver, sample: str) -> None:
    app_env(EVERY_TYPE)
    delivery = deliver(function_for(sample), load_event(f"sources/{sample}"))
    assert delivery.error is None
    assert delivery.statuses() == ["done"], delivery.reports


def test_an_event_at_the_wrong_function_or_of_a_type_not_taken_is_rejected_with_the_reason(app_env, deliver) -> None:
    app_env(EVERY_TYPE)
    (wrong,) = deliver("resource_events", load_event("sources/eventgrid/blob_created.json")).reports
    assert wrong.status == "rejected"
    assert "is taken by function data_events, not resource_events" in wrong.detail
    (tier,) = deliver("data_events", load_event("sources/bad/blob_tier_changed_not_taken.json")).reports
    assert tier.status == "rejected" and "Microsoft.Storage.BlobTierChanged" in tier.detail
    (subject,) = deliver("data_events", load_event("sources/bad/blob_subject_not_a_blob.json")).reports
    assert subject.status == "rejected" and subject.detail.startswith("subject: ")


def test_resource_and_policy_routes_take_azure_ml_resources_unless_they_say_otherwise(app_env, deliver) -> None:
    storage_write = load_event("sources/quirks/resource_write_success_not_azure_ml.json")
    app_env(EVERY_TYPE)
    (report,) = deliver("resource_events", storage_write).reports
    assert report.status == "unrouted"
    app_env(EVERY_TYPE + """
  - name: every-write
    events: [ResourceWriteSuccess]
    when: {subject: {contains: /providers/Microsoft.Storage/}}
    actions: [log]
""")  # fmt: skip
    assert [(r.route, r.status) for r in deliver("resource_events", storage_write).reports] == [("every-write", "done")]


def test_a_route_mixing_event_types_with_different_defaults_is_refused() -> None:
    with pytest.raises(RoutesError) as error:
        parse_routes("routes:\n  - name: mixed\n    events: [BlobCreated, ResourceWriteFailure]\n    actions: [log]\n",
                     "routes.yaml", {})  # fmt: skip
    expected = "routes.yaml:3: route 'mixed': events: these types filter differently by default: BlobCreated (none)"
    assert expected in str(error.value)


def test_templates_naming_fields_a_type_does_not_have_are_refused_when_routes_load() -> None:
    with pytest.raises(RoutesError) as error:
        parse_routes("""
routes:
  - name: bad-template
    events: [BlobCreated]
    actions:
      - email: {to: [a@contoso.com], subject: "{{ event.fields.run_id }}"}
""", "routes.yaml", {})  # fmt: skip
    assert "run_id" in str(error.value) and "BlobCreated" in str(error.value)


def test_a_failed_deployment_email_names_what_failed_who_and_where(app_env, deliver, tmp_path) -> None:
    app_env("""
routes:
  - name: failed-deployments
    events: [ResourceWriteFailure]
    actions:
      - email: {to: [mlops@contoso.com]}
""", EMAIL_OUTBOX=str(tmp_path / "outbox"))  # fmt: skip
    event = load_event("sources/quirks/resource_write_failure_empty_objects_status_message.json")
    assert deliver("resource_events", event).statuses() == ["done"]
    (path,) = (tmp_path / "outbox").glob("*.eml")
    message = message_from_bytes(path.read_bytes())
    assert message["Subject"] == "[mlw-contoso-prod] blue: create/update failed"
    text, html = (part.get_payload(decode=True).decode() for part in message.walk() if not part.is_multipart())
    assert "ResourceNotReady: User container has crashed" in text
    assert "Correlation id: 7f3c1e2d-9a8b-4c7d-8e6f-5a4b3c2d1e0f" in text
    assert "https://ml.azure.com/endpoints/realtime/churn-scoring/detail?wsid=" in text
    assert "ResourceNotReady" in html


def test_replay_plans_every_sample_on_its_function(tmp_path) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text(EVERY_TYPE)
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "replay.py"), "--dry-run", "--json", "--routes", str(routes),
         str(SOURCES / "eventgrid"), str(SOURCES / "cloudevents")],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    outcomes = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert len(outcomes) == len(SAMPLES) and {o["status"] for o in outcomes} == {"planned"}
    assert {o["function"] for o in outcomes} == set(FUNCTION_OF.values())


# ---- the debounced data trigger ---------------------------------------------------------------------------

UPLOADS = """
routes:
  - name: retrain-on-new-data
    events: [BlobCreated]
    when:
      subject: {startswith: /blobServices/default/containers/training-data/blobs/churn/}
    group: {by: [data.account, data.container], wait: 10m, max: 1000}
    actions:
      - pipeline:
          job: pipelines/retrain-on-new-data.yml
          inputs:
            new_data: {type: uri_folder, path: "{{ blobs.prefix_uri }}"}
            new_files: "{{ blobs.paths | tojson }}"
            file_count: "{{ blobs.count }}"
          cooldown: 1h
          retry: {attempts: 1}
"""


@pytest.fixture
def later(monkeypatch: pytest.MonkeyPatch):
    """`later(seconds)`: the digest store's clock moves on, so groups come due without waiting."""

    def move(seconds: float) -> None:
        monkeypatch.setattr("shared.noise.digests.now", lambda: clock_now() + timedelta(seconds=seconds))

    return move


def upload(number: int, folder: str = "churn/2025-03-04") -> dict[str, Any]:
    event = copy.deepcopy(load_event("sources/eventgrid/blob_created.json"))
    path = f"{folder}/part-{number:04d}.parquet"
    event["id"] = str(uuid.uuid4())
    event["subject"] = f"/blobServices/default/containers/training-data/blobs/{path}"
    event["data"]["url"] = f"https://stcontosomldata.blob.core.windows.net/training-data/{path}"
    return event


@pytest.mark.slow
def test_a_burst_of_uploads_starts_one_pipeline_job_with_their_folder_and_list(
    use_fake, app_env, deliver, functions, later
) -> None:
    suffix = uuid.uuid4().hex[:8]
    app_env(UPLOADS, DATASTORES=f"stcontosomldata/training-data={DATASTORE}", DIGEST_TABLE=f"digests{suffix}",
            GUARDRAIL_TABLE=f"guard{suffix}")  # fmt: skip
    uploads = [upload(n, "churn/2025-03-04" if n % 2 else "churn/2025-03-04/late") for n in range(150)]
    for event in uploads:
        assert deliver("data_events", event).statuses() == ["grouped"]
    assert use_fake.sent("PUT", r"/jobs/[^/]+$") == []  # held: the group waits 10 minutes
    later(601)
    functions["flush_digests"](None)
    functions["flush_digests"](None)  # nothing left: no second job
    (put,) = use_fake.sent("PUT", r"/jobs/[^/]+$")
    assert put.path.startswith(f"{WORKSPACE}/jobs/retrain_on_new_data_")  # the datastore's workspace
    inputs = put.body["properties"]["inputs"]
    assert inputs["new_data"]["uri"] == f"{DATASTORE}/paths/churn/2025-03-04/"
    assert inputs["new_data"]["jobInputType"] == "uri_folder"
    assert sorted(json.loads(inputs["new_files"]["value"])) == sorted(
        event["subject"].split("/blobs/", 1)[1] for event in uploads
    )
    assert inputs["file_count"]["value"] == "150"
    # A second burst within the cooldown is held by the guardrail, not started.
    for event in [upload(n, "churn/2025-03-05") for n in range(3)]:
        deliver("data_events", event)
    later(1300)
    functions["flush_digests"](None)
    assert len(use_fake.sent("PUT", r"/jobs/[^/]+$")) == 1


# ---- how messages present them -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sample", "status", "tone", "label"),
    [
        ("eventgrid/blob_created.json", "Created", "neutral", "Open in the Azure portal"),
        ("eventgrid/policy_state_changed.json", "Non compliant", "bad", "Open in the Azure portal"),
        ("eventgrid/resource_write_failure.json", "Failed", "bad", "Open in Azure ML studio"),
        ("eventgrid/resource_write_success.json", "Succeeded", "good", "Open in Azure ML studio"),
        ("quirks/resource_write_success_not_azure_ml.json", "Succeeded", "good", "Open in the Azure portal"),
    ],
)
def test_notices_say_the_status_its_tone_and_where_the_link_goes(sample, status, tone, label) -> None:
    notice = Notice.of(parse_event(load_event(f"sources/{sample}")))
    assert (notice.status, notice.tone, notice.link_label) == (status, tone, label)
    assert notice.scope and notice.url.startswith(("https://ml.azure.com/", "https://portal.azure.com/#resource/"))


def test_a_digest_of_a_thousand_uploads_fits_each_channel() -> None:
    from shared.events.digest import DigestEvent

    members = [parse_event(upload(n)) for n in range(1000)]
    digest = DigestEvent.of("digest:retrain:x:1", "retrain", (("data.container", "training-data"),), members)
    notice = Notice.of(digest)
    assert notice.title == "1000 BlobCreated events (Created) for container training-data"
    card = json.dumps(adaptive_card(notice), ensure_ascii=False)
    assert re.search(r"- … and \d+ more", card) and len(card.encode()) < 28_000  # what a Teams message holds
    assert len(slack_message(notice)["blocks"]) <= 50  # Slack's limit on blocks; each section holds 3,000 characters


# ---- silences, repeat intervals, history: as for Azure ML events -------------------------------------------

COMPLIANCE = """
routes:
  - name: aml-compliance
    events: [PolicyStateCreated, PolicyStateChanged]
    when:
      data.complianceState: NonCompliant
    repeat_interval: 24h
    key: "{{ event.fields.resource_id }} {{ event.fields.policy_assignment_id }}"
    actions: [log]
  - name: failed-deployments
    events: [ResourceWriteFailure]
    actions: [log]
"""


def test_silences_repeat_intervals_and_history_hold_for_the_new_sources(app_env, deliver, capsys) -> None:
    suffix = uuid.uuid4().hex[:8]
    app_env(COMPLIANCE, SILENCE_TABLE=f"silences{suffix}", GUARDRAIL_TABLE=f"guard{suffix}", SILENCE_CACHE_SECONDS="0")
    policy = load_event("sources/eventgrid/policy_state_changed.json")
    again = policy | {"id": str(uuid.uuid4())}
    assert deliver("policy_events", policy).statuses() == ["done"]
    (repeated,) = deliver("policy_events", again).reports
    assert repeated.status == "skipped" and repeated.detail.startswith("repeat_interval: ")

    assert silence_cli.main(["add", "--route", "failed-deployments", "--when",
                             "data.resourceType=Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments",
                             "--for", "2h", "--reason", "rollout window"]) == 0  # fmt: skip
    failure = load_event("sources/eventgrid/resource_write_failure.json")
    (silenced,) = deliver("resource_events", failure).reports
    assert silenced.status == "skipped" and silenced.detail.startswith("silenced: rollout window")

    capsys.readouterr()
    assert history_cli.main(["--event", failure["id"], "--json"]) == 0
    (line,) = [json.loads(text) for text in capsys.readouterr().out.splitlines() if text.strip()]
    assert (line["route"], line["status"]) == ("failed-deployments", "skipped")
