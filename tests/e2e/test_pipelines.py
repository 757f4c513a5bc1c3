"""The pipeline, batch_endpoint and schedule actions, end to end: events delivered to the app's own
functions, the ledger and guardrail counters on Azurite, and the REAL azure-ai-ml MLClient talking
HTTPS to a local server that speaks the Azure ML REST contract (tests/support/azureml_fake.py)."""

from __future__ import annotations

import copy
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

from handlers.azureml.action import EVENT_TAG, LEDGER_TAG, ROUTE_TAG
from handlers.azureml.client import job_name_for
from scripts import validate_routes
from scripts.local_host import binding_for
from shared.pipeline.reports import observe
from shared.routing.routes import RoutesError
from shared.settings import APP_ROOT
from shared.worker import current_engine, load_routes
from tests.support.azureml_fake import AzureMLFake
from tests.support.events import load_event

DRIFT = load_event("eventgrid/dataset_drift_detected.json")
WORKSPACE_PATH = (
    "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/rg-mlops-prod"
    "/providers/Microsoft.MachineLearningServices/workspaces/mlw-contoso-prod"
)

PIPELINE_ROUTE = """
routes:
  - name: retrain
    events: [DatasetDriftDetected]
    actions:
      - pipeline:
          job: pipelines/retrain-on-drift.yml
          experiment: retrain
          inputs:
            drift_run_id: "{{ event.data.RunId }}"
            drift_coefficient: "{{ event.data.DriftCoefficient }}"
          tags: {monitor: "{{ event.data.DataDriftName }}"}
          retry: {attempts: 1}
"""


def drift_event(monitor: str = "churn-features-monitor") -> dict:
    """Another drift event (new id), from the monitor named `monitor`."""
    event = copy.deepcopy(DRIFT)
    event["id"] = str(uuid.uuid4())
    event["data"]["DataDriftName"] = monitor
    event["data"]["RunId"] = f"drift_{uuid.uuid4().hex[:8]}"
    return event


def with_options(route: str, options: str) -> str:
    """PIPELINE_ROUTE with more pipeline options (YAML lines at the options' indent)."""
    return route.replace("          retry: {attempts: 1}\n", f"          retry: {{attempts: 1}}\n{options}")


@pytest.fixture
def aml(use_fake: AzureMLFake, app_env):
    """The fake (conftest `use_fake`), with the app's Azure ML actions pointed at it; returns `write_routes`."""

    def write_routes(text: str, **settings: str) -> Path:
        return app_env(text, GUARDRAIL_TABLE=f"guard{uuid.uuid4().hex[:10]}", **settings)

    return write_routes


def job_puts(fake: AzureMLFake) -> list:
    return fake.sent("PUT", r"/jobs/[^/]+$")


def ledger_record(event_id: str):
    (record,) = current_engine().ledger.records(event_id=event_id)
    return record


# ---- pipeline -------------------------------------------------------------------------------------


def test_a_pipeline_job_is_submitted_with_templated_inputs_tags_and_experiment(aml, fake, deliver) -> None:
    aml(PIPELINE_ROUTE)
    delivery = deliver("drift_detected", DRIFT)
    assert delivery.error is None, delivery.reports
    (report,) = delivery.reports
    assert report.status == "done" and report.target == "pipelines/retrain-on-drift.yml"

    (put,) = job_puts(fake)
    key = f"{DRIFT['id']}/retrain/0"
    name = job_name_for(key, "retrain")
    assert put.path == f"{WORKSPACE_PATH}/jobs/{name}"  # the workspace that sent the event
    assert put.headers["authorization"].startswith("Bearer ")
    body = put.body["properties"]
    assert body["jobType"] == "Pipeline"
    assert body["experimentName"] == "retrain"
    assert body["inputs"]["drift_run_id"] == {"value": DRIFT["data"]["RunId"], "jobInputType": "literal"}
    assert body["inputs"]["drift_coefficient"]["value"] == "0.4271"
    assert body["inputs"]["model_name"]["value"] == "churn-classifier"  # the YAML's default stays
    assert body["tags"][ROUTE_TAG] == "retrain"
    assert body["tags"][EVENT_TAG] == DRIFT["id"]
    assert body["tags"][LEDGER_TAG] == key
    assert body["tags"]["monitor"] == "churn-features-monitor"
    assert body["jobs"]["train"]["componentId"].endswith("/components/train_churn_model/versions/3")

    record = ledger_record(DRIFT["id"])
    assert record.status == "done"
    assert record.extra["job"] == name
    assert record.extra["studio_url"].startswith("https://ml.azure.com/runs/" + name)
    assert name in report.detail


def test_a_redelivered_event_does_not_submit_a_second_job(aml, fake, deliver) -> None:
    aml(PIPELINE_ROUTE)
    first, second = deliver("drift_detected", DRIFT), deliver("drift_detected", DRIFT)
    assert first.statuses() == ["done"]
    assert second.statuses() == ["skipped"] and second.reports[0].detail.startswith("already done")
    assert len(job_puts(fake)) == 1


def test_a_job_that_already_exists_counts_as_done(aml, fake, deliver) -> None:
    # The job was started, but its outcome never reached the ledger (a worker died after the PUT):
    # a fresh ledger stands for that, and the redelivery names the same job, which the service refuses.
    aml(PIPELINE_ROUTE)
    deliver("drift_detected", DRIFT)
    aml(PIPELINE_ROUTE, LEDGER_TABLE=f"ledger{uuid.uuid4().hex[:10]}")  # a ledger without its record
    again = deliver("drift_detected", DRIFT)
    assert again.error is None
    (report,) = again.reports
    assert report.status == "done"
    assert "already started by an earlier delivery" in report.detail
    puts = job_puts(fake)
    assert len(puts) == 2 and puts[0].path == puts[1].path  # asked for the same name: no second job
    assert len(fake.jobs) == 1


def test_a_route_can_name_another_workspace(aml, fake, deliver) -> None:
    aml(
        with_options(
            PIPELINE_ROUTE, "          workspace: {subscription: sub-9, resource_group: rg-ml, name: ws-train}\n"
        )
    )
    assert deliver("drift_detected", DRIFT).statuses() == ["done"]
    (put,) = job_puts(fake)
    assert put.path.startswith(
        "/subscriptions/sub-9/resourceGroups/rg-ml/providers/Microsoft.MachineLearningServices/workspaces/ws-train/jobs/"
    )


def test_a_forbidden_submission_fails_naming_the_role(aml, fake, deliver) -> None:
    aml(PIPELINE_ROUTE)
    fake.fail_next("PUT", r"/jobs/", 403, "The client does not have authorization to perform action")
    delivery = deliver("drift_detected", DRIFT)
    assert delivery.error is not None  # Event Grid redelivers
    (report,) = delivery.reports
    assert report.status == "failed" and report.attempts == 1  # permanent: not retried in the invocation
    assert "403" in report.detail and "AzureML Data Scientist" in report.detail


# ---- batch endpoint and schedule ----------------------------------------------------------------------


BATCH_ROUTE = """
routes:
  - name: score
    events: [DatasetDriftDetected]
    actions:
      - batch_endpoint:
          endpoint: score-be
          deployment: blue
          experiment: scoring
          inputs:
            input_data: {type: uri_folder, path: "azureml://datastores/scoring/paths/{{ event.data.RunId }}/"}
            threshold: "{{ event.data.DriftCoefficient }}"
            limit: 100
"""


def test_a_batch_endpoint_is_invoked_with_templated_inputs_and_the_job_name(aml, fake, deliver) -> None:
    aml(BATCH_ROUTE)
    fake.batch_endpoints.update({"score-be": ["default", "blue"]})
    delivery = deliver("drift_detected", DRIFT)
    assert delivery.statuses() == ["done"], delivery.reports
    (score,) = fake.sent("POST", r"^/score/")
    name = job_name_for(f"{DRIFT['id']}/score/0", "score")
    assert score.body["properties"]["name"] == name
    assert score.body["properties"]["properties"] == {"experimentName": "scoring"}
    assert score.body["properties"]["inputData"] == {
        "input_data": {
            "jobInputType": "UriFolder",
            "uri": f"azureml://datastores/scoring/paths/{DRIFT['data']['RunId']}/",
        },
        "threshold": {"jobInputType": "Literal", "value": "0.4271"},
        "limit": {"jobInputType": "Literal", "value": 100},
    }
    assert score.headers["azureml-model-deployment"] == "blue"
    assert ledger_record(DRIFT["id"]).extra["job"] == name

    assert deliver("drift_detected", DRIFT).statuses() == ["skipped"]
    assert len(fake.sent("POST", r"^/score/")) == 1


def test_the_deployment_one_invoke_names_does_not_stick_to_the_next(aml, fake, deliver) -> None:
    # azure-ai-ml keeps invoke headers in one dict shared by all calls and never removes the deployment.
    fake.batch_endpoints.update({"score-be": ["default", "blue"], "archive-be": ["default"]})
    aml(BATCH_ROUTE)
    assert deliver("drift_detected", drift_event()).statuses() == ["done"]
    aml(BATCH_ROUTE.replace("endpoint: score-be", "endpoint: archive-be").replace("deployment: blue", ""))
    assert deliver("drift_detected", drift_event()).statuses() == ["done"]
    first, second = fake.sent("POST", r"^/score/")
    assert (first.path, first.headers["azureml-model-deployment"]) == ("/score/score-be", "blue")
    assert second.path == "/score/archive-be" and "azureml-model-deployment" not in second.headers


def test_a_local_data_path_from_event_data_is_refused(aml, fake, deliver) -> None:
    aml(BATCH_ROUTE.replace('"azureml://datastores/scoring/paths/{{ event.data.RunId }}/"', '"{{ event.data.RunId }}"'))
    fake.batch_endpoints.update({"score-be": ["blue"]})
    (report,) = deliver("drift_detected", DRIFT).reports
    assert report.status == "failed" and "is not a remote URI" in report.detail
    assert fake.sent("POST", r"^/score/") == []


SCHEDULE_ROUTE = """
routes:
  - name: evaluate
    events: [DatasetDriftDetected]
    actions:
      - schedule: {name: nightly-eval, skip_if_running: true}
"""


def test_a_schedule_is_triggered_and_its_job_recorded(aml, fake, deliver) -> None:
    aml(SCHEDULE_ROUTE)
    fake.schedules.add("nightly-eval")
    delivery = deliver("drift_detected", DRIFT)
    assert delivery.statuses() == ["done"], delivery.reports
    (trigger,) = fake.sent("POST", r"/schedules/nightly-eval/trigger$")
    assert trigger.path.startswith(WORKSPACE_PATH) and "scheduleTime" in trigger.body
    record = ledger_record(DRIFT["id"])
    assert record.extra["schedule"] == "nightly-eval"
    assert record.extra["job"].startswith("nightly-eval-")


def test_a_schedule_is_not_triggered_while_its_job_runs(aml, fake, deliver) -> None:
    aml(SCHEDULE_ROUTE)
    fake.schedules.add("nightly-eval")
    fake.seed_job("nightly-eval-earlier", status="Running", tags={}, schedule="nightly-eval")
    delivery = deliver("drift_detected", DRIFT)
    (report,) = delivery.reports
    assert report.status == "skipped"
    assert report.detail == "skip_if_running: job nightly-eval-earlier started by this route is still Running"
    assert fake.sent("POST", r"/trigger$") == []


def test_an_unknown_schedule_fails_permanently(aml, fake, deliver) -> None:
    aml(SCHEDULE_ROUTE)
    (report,) = deliver("drift_detected", DRIFT).reports
    assert report.status == "failed" and "404" in report.detail and "nightly-eval" in report.detail


# ---- guardrails -------------------------------------------------------------------------------------


def test_cooldown_skips_a_second_start_for_the_same_key_and_records_why(aml, fake, deliver) -> None:
    aml(with_options(PIPELINE_ROUTE, '          cooldown: 6h\n          key: "{{ event.data.DataDriftName }}"\n'))
    first, second = drift_event("monitor-a"), drift_event("monitor-a")
    assert deliver("drift_detected", first).statuses() == ["done"]
    (report,) = deliver("drift_detected", second).reports
    assert report.status == "skipped"
    assert report.detail.startswith("cooldown: 'monitor-a' last started at ") and "no new start until " in report.detail
    assert first["id"] in report.detail
    assert ledger_record(second["id"]).status == "skipped"
    assert ledger_record(second["id"]).detail == report.detail
    # another key is not held back, and a redelivery of the first event is not stopped by its own start
    assert deliver("drift_detected", drift_event("monitor-b")).statuses() == ["done"]
    assert len(job_puts(fake)) == 2


def test_max_per_day_holds_under_concurrent_deliveries(aml, fake, functions) -> None:
    aml(with_options(PIPELINE_ROUTE, "          max_per_day: 1\n"))
    events = [drift_event(f"monitor-{i}") for i in range(3)]
    errors: list[Exception] = []

    def deliver_once(event: dict) -> None:
        try:
            functions["drift_detected"](binding_for(event))
        except Exception as error:
            errors.append(error)

    with observe() as reports:
        threads = [threading.Thread(target=deliver_once, args=(event,)) for event in events]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    assert sorted(r.status for r in reports) == ["done", "skipped", "skipped"]
    assert len(job_puts(fake)) == 1
    for report in reports:
        if report.status == "skipped":
            assert report.detail.startswith("max_per_day: 1 of 1 starts used on ")
            assert ledger_record(report.event_id).status == "skipped"


def test_a_start_that_fails_for_good_gives_its_slot_back(aml, fake, deliver) -> None:
    aml(with_options(PIPELINE_ROUTE, "          max_per_day: 1\n"))
    fake.fail_next("PUT", r"/jobs/", 403, "forbidden")
    assert deliver("drift_detected", drift_event()).statuses() == ["failed"]
    assert deliver("drift_detected", drift_event()).statuses() == ["done"]


def test_skip_if_running_skips_while_a_job_of_this_route_runs(aml, fake, deliver) -> None:
    aml(with_options(PIPELINE_ROUTE, "          skip_if_running: true\n"))
    fake.seed_job("retrain_other", status="Completed", tags={ROUTE_TAG: "retrain"})
    fake.seed_job("someone_elses", status="Running", tags={ROUTE_TAG: "another-route"})
    assert deliver("drift_detected", drift_event()).statuses() == ["done"]  # finished jobs do not count
    (listing,) = fake.sent("GET", r"/jobs$")
    assert listing.query["tag"] == ROUTE_TAG

    # the job just started is NotStarted: still active, so the next event waits for it
    second = drift_event()
    (report,) = deliver("drift_detected", second).reports
    started = job_puts(fake)[0].path.rsplit("/", 1)[1]
    assert report.status == "skipped"
    assert report.detail == f"skip_if_running: job {started} started by this route is still NotStarted"
    assert ledger_record(second["id"]).status == "skipped"
    assert len(job_puts(fake)) == 1


# ---- validation and cold start ------------------------------------------------------------------------


def test_the_shipped_pipeline_yaml_loads_offline() -> None:
    from azure.ai.ml import load_job
    from azure.ai.ml.entities import PipelineJob

    job = load_job(APP_ROOT / "pipelines" / "retrain-on-drift.yml")
    assert isinstance(job, PipelineJob)
    assert set(job.jobs) == {"prepare", "train", "evaluate"}
    assert {"drift_run_id", "drift_coefficient"} <= set(job.inputs)


def test_the_shipped_routes_validate_with_the_deep_checks(capsys) -> None:
    assert validate_routes.main(["--routes", str(APP_ROOT / "routes.yaml")]) == 0
    assert "retrain-on-drift (disabled): DatasetDriftDetected -> pipeline" in capsys.readouterr().out


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_template_naming_a_missing_field_is_a_route_error_with_its_line(tmp_path) -> None:
    routes = write(tmp_path, "routes.yaml", PIPELINE_ROUTE.replace("event.data.RunId", "event.data.NoSuchField"))
    with pytest.raises(RoutesError) as raised:
        load_routes(routes, {})
    (problem,) = raised.value.problems
    assert problem.startswith(f"{routes}:6: route 'retrain': pipeline: inputs.drift_run_id: ")
    assert "NoSuchField" in problem and "DatasetDriftDetected" in problem


def test_validate_routes_reports_a_broken_pipeline_yaml_with_its_line(tmp_path, capsys) -> None:
    broken = write(tmp_path, "broken.yml", "type: pipeline\ninputs:\n  a: [1,\n")
    routes = write(tmp_path, "routes.yaml", PIPELINE_ROUTE.replace("pipelines/retrain-on-drift.yml", str(broken)))
    assert validate_routes.main(["--routes", str(routes)]) == 1
    err = capsys.readouterr().err
    assert f"{routes}:6: route 'retrain': pipeline: job {broken}:" in err and "YAML syntax error" in err


def test_validate_routes_runs_load_job_on_the_pipeline_yaml(tmp_path, capsys) -> None:
    shipped = (APP_ROOT / "pipelines" / "retrain-on-drift.yml").read_text()
    wrong = write(
        tmp_path, "wrong.yml", shipped.replace("continue_on_step_failure: false", "continue_on_step_failure: maybe")
    )
    routes = write(tmp_path, "routes.yaml", PIPELINE_ROUTE.replace("pipelines/retrain-on-drift.yml", str(wrong)))
    load_routes(routes, {})  # the worker's cheap checks pass: the YAML parses and declares the inputs
    assert validate_routes.main(["--routes", str(routes)]) == 1
    err = capsys.readouterr().err
    assert f"{routes}:6: route 'retrain': pipeline: job {wrong} does not load with azure.ai.ml:" in err
    assert "settings.continue_on_step_failure: Not a valid boolean. (line " in err  # the SDK's line


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("          cooldown: soon\n", "pipeline: cooldown: 'soon' is not a duration"),
        ("          max_per_day: 0\n", "pipeline: max_per_day must be a whole number from 1 to 500, got 0"),
        ('          key: "{{ event.data.DataDriftName }}"\n', "pipeline: key only applies with a cooldown"),
        ("          inputs2: {}\n", "pipeline: unknown option 'inputs2'"),
    ],
)
def test_guardrail_options_are_validated(tmp_path, options, message) -> None:
    routes = write(tmp_path, "routes.yaml", with_options(PIPELINE_ROUTE, options))
    with pytest.raises(RoutesError) as raised:
        load_routes(routes, {})
    assert any(message in problem for problem in raised.value.problems), raised.value.problems


def test_an_input_the_pipeline_does_not_declare_is_a_route_error(tmp_path) -> None:
    routes = write(tmp_path, "routes.yaml", PIPELINE_ROUTE.replace("drift_coefficient:", "drift_coef:"))
    with pytest.raises(RoutesError) as raised:
        load_routes(routes, {})
    assert "declares no input 'drift_coef'" in raised.value.problems[0]


def test_skip_if_running_is_refused_for_batch_endpoints(tmp_path) -> None:
    routes = write(tmp_path, "routes.yaml", BATCH_ROUTE.replace("deployment: blue", "skip_if_running: true"))
    with pytest.raises(RoutesError) as raised:
        load_routes(routes, {})
    assert "batch_endpoint: skip_if_running is not available" in raised.value.problems[0]


def test_loading_pipeline_routes_does_not_import_azure_ai_ml(tmp_path) -> None:
    routes = write(tmp_path, "routes.yaml", with_options(PIPELINE_ROUTE, "          cooldown: 6h\n"))
    code = (
        "import sys, function_app\n"
        "from shared.worker import load_routes\n"
        f"table = load_routes({str(routes)!r}, {{}})\n"
        "assert table.routes[0].actions[0].kind == 'pipeline'\n"
        "print(sorted(m for m in sys.modules if m.startswith('azure.ai.ml')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=APP_ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
