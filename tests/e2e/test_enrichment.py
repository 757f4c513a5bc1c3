"""Route option `enrich: true`, end to end: events delivered to the app's own functions, the ledger on
Azurite, and run/model details read by the REAL MLClient and httpx from the local HTTPS Azure ML fake
(run history, the MLflow REST API, the model registry)."""

from __future__ import annotations

import copy
import uuid
from email import message_from_bytes
from pathlib import Path

import pytest

from shared.routing.routes import RoutesError
from shared.worker import current_engine, parse_routes
from tests.support.azureml_fake import AzureMLFake
from tests.support.docs import readme_route
from tests.support.events import load_event

FAILED_RUN = load_event("eventgrid/run_status_changed_failed.json")
MODEL = load_event("eventgrid/model_registered.json")
RUN_ID = FAILED_RUN["data"]["runId"]

TWO_ENRICHED_ROUTES = """
routes:
  - name: weak-runs
    events: [RunStatusChanged]
    enrich: true
    when: {run.metrics.accuracy: {lt: 0.8}}
    actions:
      - email: {to: mlops@contoso.com}
      - webhook:
          url: "${HOOK_URL}/weak"
          allow_private: true
          body: '{"accuracy": "{{ run.metrics.accuracy }}", "error": "{{ run.error }}", "took": "{{ run.duration }}"}'
  - name: strong-runs
    events: [RunStatusChanged]
    enrich: true
    when: {run.metrics.accuracy: {gte: 0.8}}
    actions:
      - webhook: {url: "${HOOK_URL}/strong", allow_private: true}
"""

ONE_ENRICHED_ROUTE = """
routes:
  - name: failed-runs
    events: [RunStatusChanged, ModelRegistered]
    enrich: true
    actions:
      - webhook: {url: "${HOOK_URL}/runs", allow_private: true, retry: {attempts: 1}}
      - email: {to: mlops@contoso.com}
"""


@pytest.fixture
def enrich_env(use_fake: AzureMLFake, app_env, receiver, tmp_path: Path):
    """The Azure ML fake (conftest `use_fake`), webhooks to `receiver`, email to an outbox; `write_routes`."""

    def write_routes(text: str, **settings: str) -> Path:
        return app_env(text, HOOK_URL=receiver.url, EMAIL_OUTBOX=str(tmp_path / "outbox"), **settings)

    return write_routes


def new_event(template: dict) -> dict:
    event = copy.deepcopy(template)
    event["id"] = str(uuid.uuid4())
    return event


def seed_failed_run(fake: AzureMLFake, accuracy: float = 0.71) -> None:
    fake.seed_run(
        RUN_ID, status="Failed", start="2025-03-04T09:40:00Z", end="2025-03-04T10:02:11Z",
        error="CUDA out of memory while allocating 2.00 GiB", metrics={"accuracy": accuracy, "loss": 0.52},
    )  # fmt: skip


def emails(tmp_path: Path) -> list:
    return [message_from_bytes(path.read_bytes()) for path in sorted((tmp_path / "outbox").glob("*.eml"))]


def bodies(message) -> tuple[str, str]:
    text, html = (part.get_payload(decode=True).decode() for part in message.walk() if not part.is_multipart())
    return text, html


def regional_gets(fake: AzureMLFake) -> list:
    return fake.sent("GET", r"^/(history|mlflow)/v1\.0/")


def test_run_details_reach_a_condition_a_template_and_the_email_with_one_fetch_for_two_routes(
    enrich_env, fake, receiver, deliver, tmp_path
) -> None:
    enrich_env(TWO_ENRICHED_ROUTES)
    seed_failed_run(fake, accuracy=0.71)
    delivery = deliver("run_events", new_event(FAILED_RUN))
    assert delivery.error is None, delivery.reports
    # Only the route whose `run.metrics.accuracy` condition holds acted.
    assert sorted((r.route, r.action, r.status) for r in delivery.reports) == [
        ("weak-runs", "email", "done"), ("weak-runs", "webhook", "done")
    ]  # fmt: skip
    (request,) = receiver.requests
    assert request.path == "/weak"
    assert request.json() == {"accuracy": "0.71", "error": "CUDA out of memory while allocating 2.00 GiB",
                              "took": "22m 11s"}  # fmt: skip
    # Both routes enrich; the workspace was read once: run history + MLflow, and the tracking URI.
    assert len(regional_gets(fake)) == 2
    assert len(fake.sent("GET", r"/workspaces/mlw-contoso-prod$")) <= 1
    history, mlflow = sorted(regional_gets(fake), key=lambda r: r.path)
    assert history.path.endswith(f"/runs/{RUN_ID}/details")
    assert mlflow.query == {"run_id": RUN_ID}
    assert mlflow.headers["authorization"].startswith("Bearer ")
    # The shipped email shows the details: error, duration and metrics, in text and HTML.
    (message,) = emails(tmp_path)
    text, html = bodies(message)
    for body in (text, html):
        assert "CUDA out of memory while allocating 2.00 GiB" in body
        assert "accuracy=0.71" in body and "loss=0.52" in body
        assert "22m 11s" in body


def test_model_details_name_the_producing_run_and_its_metrics(enrich_env, fake, receiver, deliver, tmp_path) -> None:
    routes = ONE_ENRICHED_ROUTE.replace("[RunStatusChanged, ModelRegistered]", "[ModelRegistered]")
    enrich_env(routes.replace("    enrich: true\n", "    enrich: true\n    when: {model.metrics.auc: {gte: 0.9}}\n"))
    fake.seed_model("churn-classifier", "7", description="LightGBM, trained on Q1 data", job_name="train_q1_42")
    fake.seed_run("train_q1_42", status="Completed", start="2025-03-04T08:00:00Z", end="2025-03-04T08:30:00Z",
                  metrics={"auc": 0.93})  # fmt: skip
    delivery = deliver("model_registered", new_event(MODEL))
    assert delivery.error is None and delivery.statuses() == ["done", "done"], delivery.reports
    (message,) = emails(tmp_path)
    text, _ = bodies(message)
    assert "Description: LightGBM, trained on Q1 data" in text
    assert "Produced by run: train_q1_42" in text and "auc=0.93" in text


@pytest.mark.parametrize("breakage", ["500", "timeout"])
def test_when_the_details_cannot_be_had_the_actions_still_run_and_the_ledger_says_why(
    enrich_env, fake, receiver, deliver, tmp_path, breakage: str
) -> None:
    # 0.5 s only where the wait is the point: the first read of a test session imports azure.ai.ml (~1.5 s).
    enrich_env(ONE_ENRICHED_ROUTE, ENRICH_TIMEOUT_SECONDS="5" if breakage == "500" else "0.5")
    seed_failed_run(fake)
    if breakage == "500":
        fake.fail_next("GET", r"^/history/v1\.0/.*/details$", 500, "run history is down")
    else:
        fake.delay(r"^/history/v1\.0/", 3.0)
    event = new_event(FAILED_RUN)
    delivery = deliver("run_events", event)
    assert delivery.error is None, delivery.reports
    assert delivery.statuses() == ["done", "done"]
    assert len(receiver.requests) == 1
    expected = "run history is down" if breakage == "500" else "no answer from the workspace within 0.5s"
    for record in current_engine().ledger.records(event_id=event["id"]):
        assert record.status == "done"
        assert "without run/model details" in record.detail and expected in record.detail
        assert expected in record.extra["enrichment"]
    (message,) = emails(tmp_path)
    text, _ = bodies(message)
    assert f"Run {RUN_ID} failed" in text  # the message went, with what the event itself says
    assert "Details: unavailable" in text and expected in text


def test_a_failed_fetch_does_not_drop_a_route_whose_conditions_read_details(
    enrich_env, fake, receiver, deliver
) -> None:
    enrich_env(TWO_ENRICHED_ROUTES)
    # No run seeded: run history answers 404. The conditions cannot be decided, so both routes act.
    delivery = deliver("run_events", new_event(FAILED_RUN))
    assert delivery.error is None
    assert sorted({r.route for r in delivery.reports}) == ["strong-runs", "weak-runs"]
    assert sorted(request.path for request in receiver.requests) == ["/strong", "/weak"]
    assert receiver.requests[0].json() != {}  # the templated body rendered with empty details


def test_a_route_without_enrich_never_fetches(enrich_env, fake, receiver, deliver) -> None:
    enrich_env(ONE_ENRICHED_ROUTE.replace("    enrich: true\n", ""))
    assert deliver("run_events", new_event(FAILED_RUN)).error is None
    assert regional_gets(fake) == [] and fake.requests == []


@pytest.mark.parametrize(
    ("route", "problem"),
    [
        ("    when: {run.metrics.accuracy: {lt: 0.8}}\n", "conditions on run.* need `enrich: true`"),
        ("    enrich: yes-please\n", "`enrich` must be true or false"),
        ("    enrich: true\n    when: {model.description: {contains: x}}\n",
         "model.* is fetched only for ModelRegistered events"),
        ("    enrich: true\n    when: {run: Failed}\n", "must name a field, e.g. run.metrics.accuracy"),
        ("    enrich: true\n    when: {runs.status: Failed}\n", "unknown path 'runs.status'"),
    ],
)  # fmt: skip
def test_routes_that_misuse_enrichment_are_rejected_with_the_line(route: str, problem: str) -> None:
    text = f"routes:\n  - name: r\n    events: [RunStatusChanged]\n{route}    actions: [log]\n"
    with pytest.raises(RoutesError) as raised:
        parse_routes(text, "routes.yaml", {})
    assert any(problem in line and line.startswith("routes.yaml:") for line in raised.value.problems), raised.value


def test_enrich_on_events_without_details_is_rejected() -> None:
    text = "routes:\n  - name: r\n    events: [ModelDeployed]\n    enrich: true\n    actions: [log]\n"
    with pytest.raises(RoutesError, match="fetches details of runs and registered models only"):
        parse_routes(text, "routes.yaml", {})


def test_the_readme_recipe_for_v2_model_monitors_routes_breaches_and_nothing_else(
    enrich_env, fake, receiver, deliver, tmp_path
) -> None:
    recipe = readme_route("model-monitor-breach")
    parse_routes(recipe, "README.md", {})  # valid as documented, pipeline action included
    enrich_env(recipe.split("    - pipeline:")[0] + '    - webhook: {url: "${HOOK_URL}/breach", allow_private: true}\n')
    breach = new_event(FAILED_RUN)
    breach["data"]["runTags"] = {"azureml_modelmonitor_threshold_breached": (
        "The signal 'churn_monitor_data_drift' has failed due to one or more features violating metric thresholds.\n"
        "The feature names and their corresponding computed metric values violating the threshold are \n"
        '[\'{"group":"tenure","metric_value":0.31,"metric_name":"jensen_shannon_distance","threshold_value":0.1}\']\n'
    )}  # fmt: skip
    assert deliver("run_events", breach).statuses() == ["done", "done"]
    (message,) = emails(tmp_path)
    assert message["Subject"].startswith("Model monitor: The signal 'churn_monitor_data_drift' has failed")
    assert [request.path for request in receiver.requests] == ["/breach"]
    # An ordinary failed run is not a monitor breach.
    assert deliver("run_events", new_event(FAILED_RUN)).statuses() == ["unrouted"]
