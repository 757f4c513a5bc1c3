"""v2 model monitor breaches as drift signals: the tag parser (shared/events/monitoring.py), and routes on
DatasetDriftDetected receiving the signal derived from a RunStatusChanged, through the app's own
functions with the ledger on Azurite, email to the outbox and webhooks to a local receiver."""

from __future__ import annotations

import copy
import uuid
from email import message_from_bytes
from pathlib import Path

import pytest

from handlers.common.notice import Notice
from shared.events.model import ModelMonitorDrift
from shared.events.monitoring import BREACH_TAG, derived_events
from shared.events.parse import parse_event
from shared.worker import parse_routes
from tests.support.docs import readme_route
from tests.support.events import EVENTS, load_event
from tests.support.scripts import lines, replay

SAMPLE = "quirks/run_status_failed_model_monitor_breach.json"
BREACH = load_event(SAMPLE)
MESSAGE = BREACH["data"]["runTags"][BREACH_TAG]

ROUTES = """
routes:
  - name: failed-runs
    events: [RunStatusChanged]
    when: {data.RunStatus: Failed}
    actions:
      - webhook: {url: "${HOOK_URL}/runs", allow_private: true}
  - name: drift
    events: [DatasetDriftDetected]
    actions:
      - email: {to: mlops@contoso.com}
  - name: v1-drift-only
    events: [DatasetDriftDetected]
    when: {data.source: {not_in: [v2-model-monitor]}}
    actions:
      - webhook: {url: "${HOOK_URL}/v1", allow_private: true}
"""


def with_tag(message: str | None, *, status: str = "Failed", key: str = BREACH_TAG) -> dict:
    event = copy.deepcopy(BREACH)
    event["id"] = str(uuid.uuid4())
    event["data"]["runStatus"] = status
    event["data"]["runTags"] = {"team": "growth"} if message is None else {key: message}
    return event


def derived(event: dict) -> list:
    return derived_events(parse_event(event))


# ---- the tag, read leniently ------------------------------------------------------------------------


def test_a_breach_becomes_a_drift_signal_with_the_signal_and_its_violations() -> None:
    (signal,) = derived(BREACH)
    assert isinstance(signal, ModelMonitorDrift)
    assert signal.event_type == "Microsoft.MachineLearningServices.DatasetDriftDetected"
    assert signal.id == BREACH["id"] + "/model-monitor"
    assert (signal.signal_name, signal.data_drift_name) == ("churn_monitor_data_drift", "churn_monitor_data_drift")
    assert (signal.monitor, signal.data_drift_id) == ("churn-monitor", "churn-monitor")
    assert signal.run_id == BREACH["data"]["runId"]
    assert signal.violations == [
        {"group": "tenure", "metric_name": "JensenShannonDistance", "metric_value": 0.3114, "threshold_value": 0.1},
        {"group": "monthly_charges", "metric_name": "TwoSampleKolmogorovSmirnovTest", "metric_value": 0.0021,
         "threshold_value": 0.05},
    ]  # fmt: skip
    # The coefficient is the largest distance; a p-value (breaching below its threshold) is no distance.
    assert signal.drift_coefficient == 0.3114
    assert signal.data["Source"] == "v2-model-monitor"
    assert signal.title == "Model monitor signal 'churn_monitor_data_drift' breached"
    assert signal.studio_url.startswith(f"https://ml.azure.com/runs/{BREACH['data']['runId']}?wsid=")
    # Read back as the same typed event (digest members, replayed output).
    assert parse_event(signal.to_dict()) == signal


def test_rows_that_do_not_breach_are_left_out_and_the_tag_key_is_case_insensitive() -> None:
    # Older component versions listed every evaluated row, breaching or not.
    rows = [
        '{"group":"age","metric_value":0.02,"metric_name":"JensenShannonDistance","threshold_value":0.1}',
        '{"group":"plan","metric_value":0.4,"metric_name":"PearsonsChiSquaredTest","threshold_value":0.05}',
        '{"group":"region","metric_value":0.25,"metric_name":"PopulationStabilityIndex","threshold_value":0.2}',
    ]
    message = MESSAGE.split("[")[0] + repr(rows) + "\n"
    (signal,) = derived(with_tag(message, key=BREACH_TAG.upper()))
    assert [row["group"] for row in signal.violations] == ["region"]
    assert signal.drift_coefficient == 0.25


@pytest.mark.parametrize(
    "message",
    [
        "The signal has failed due to one or more features violating metric thresholds.",  # no name, no rows
        "something else entirely",
        "The signal 'x' has failed due to ... are \n['{not json}', 42, '[1, 2]']",
        "[" * 5000,
    ],
)
def test_an_unreadable_tag_still_yields_a_signal_named_after_the_monitor(message: str) -> None:
    (signal,) = derived(with_tag(message))
    assert signal.data_drift_name in ("churn-monitor", "x")
    assert signal.violations == [] and signal.drift_coefficient is None


def test_a_tag_cut_short_keeps_the_complete_rows() -> None:
    (signal,) = derived(with_tag(MESSAGE[: MESSAGE.index("monthly_charges") + 20]))
    assert [row["group"] for row in signal.violations] == ["tenure"]


@pytest.mark.parametrize(
    "event",
    [with_tag(None), with_tag(MESSAGE, status="Completed"), with_tag(MESSAGE, status="Running"), with_tag("  ")],
    ids=["failed-without-tag", "completed-with-tag", "running-with-tag", "blank-tag"],
)
def test_only_a_failed_run_with_the_breach_tag_is_a_signal(event: dict) -> None:
    assert derived(event) == []


def test_the_notice_lists_violations_and_has_no_empty_coefficient_line() -> None:
    p_values = ['{"group":"plan","metric_value":0.01,"metric_name":"PearsonsChiSquaredTest","threshold_value":0.05}']
    (signal,) = derived(with_tag(MESSAGE.split("[")[0] + repr(p_values * 7)))
    rows = dict(Notice.of(signal).rows())
    assert signal.drift_coefficient is None and "Drift coefficient" not in rows
    assert rows["Signal"] == "churn_monitor_data_drift" and rows["Monitor"] == "churn-monitor"
    assert rows["Violations"] == "; ".join(["plan: PearsonsChiSquaredTest 0.01 (threshold 0.05)"] * 5 + ["and 2 more"])


# ---- through the app -------------------------------------------------------------------------------


@pytest.fixture
def monitor_env(app_env, receiver, tmp_path: Path):
    app_env(ROUTES, HOOK_URL=receiver.url, EMAIL_OUTBOX=str(tmp_path / "outbox"))
    return tmp_path / "outbox"


def emails(outbox: Path) -> list:
    return [message_from_bytes(path.read_bytes()) for path in sorted(outbox.glob("*.eml"))]


def subject(message) -> str:
    return " ".join(message["Subject"].split())  # a long header arrives folded


def text_body(message) -> str:
    (text,) = [part for part in message.walk() if part.get_content_type() == "text/plain"]
    return text.get_payload(decode=True).decode()


def test_a_breach_fires_the_run_route_and_the_drift_route_once(monitor_env: Path, receiver, deliver) -> None:
    first = deliver("run_events", BREACH)
    assert first.error is None
    by_route = {report.route: report for report in first.reports}
    assert set(by_route) == {"failed-runs", "drift"}  # the v1-only route opted out
    assert by_route["failed-runs"].event_id == BREACH["id"] and by_route["failed-runs"].status == "done"
    drift = by_route["drift"]
    assert (drift.event_id, drift.status) == (BREACH["id"] + "/model-monitor", "done")
    assert drift.event_type.endswith("DatasetDriftDetected") and drift.function == "run_events"
    assert [request.path for request in receiver.requests] == ["/runs"]
    (message,) = emails(monitor_env)
    assert subject(message) == "[mlw-contoso-prod] Model monitor signal 'churn_monitor_data_drift' breached"
    text = text_body(message)
    summary = "Signal churn_monitor_data_drift of monitor churn-monitor breached its metric thresholds: 2 violations"
    assert summary in text
    assert "tenure: JensenShannonDistance 0.3114 (threshold 0.1)" in text
    assert "Drift coefficient: 0.3114" in text and "between ?" not in text

    redelivery = deliver("run_events", BREACH)
    assert redelivery.error is None and redelivery.statuses() == ["skipped", "skipped"]
    assert len(emails(monitor_env)) == 1 and len(receiver.requests) == 1


def test_a_failed_run_without_the_tag_takes_only_its_own_route(monitor_env: Path, receiver, deliver) -> None:
    delivery = deliver("run_events", with_tag(None))
    assert [report.route for report in delivery.reports] == ["failed-runs"]
    assert emails(monitor_env) == []


def test_an_unreadable_tag_still_notifies_under_the_monitor_name(monitor_env: Path, deliver) -> None:
    delivery = deliver("run_events", with_tag("threshold breached, details unavailable"))
    assert sorted(delivery.statuses()) == ["done", "done"]
    (message,) = emails(monitor_env)
    assert subject(message) == "[mlw-contoso-prod] Model monitor signal 'churn-monitor' breached"
    text = text_body(message)
    assert "lists no readable violations" in text
    assert "Drift coefficient" not in text and "Violations" not in text


def test_a_v1_drift_event_still_reaches_every_drift_route(monitor_env: Path, receiver, deliver) -> None:
    delivery = deliver("drift_detected", load_event("eventgrid/dataset_drift_detected.json"))
    assert sorted(report.route for report in delivery.reports) == ["drift", "v1-drift-only"]
    (message,) = emails(monitor_env)
    assert "measured a drift coefficient of 0.4271" in text_body(message)


def test_replay_dry_run_plans_the_derived_signal() -> None:
    result = replay("--dry-run", "--json", str(EVENTS / SAMPLE), env={"PATH": ""})
    assert result.returncode == 0, result.stderr
    planned = {(o["event_id"], o["event_type"].split(".")[-1], o["route"], o["action"]) for o in lines(result)}
    # The shipped routes.yaml: failed-runs on the run, drift (DriftCoefficient >= 0.3) on the signal.
    assert planned == {
        (BREACH["id"], "RunStatusChanged", "failed-runs", "log"),
        (BREACH["id"], "RunStatusChanged", "failed-runs", "email"),
        (BREACH["id"] + "/model-monitor", "DatasetDriftDetected", "drift", "log"),
        (BREACH["id"] + "/model-monitor", "DatasetDriftDetected", "drift", "email"),
    }


def test_the_readme_opt_out_keeps_v2_signals_from_a_route() -> None:
    (route,) = parse_routes(readme_route("v1-drift-only"), "README.md", {}).routes
    (signal,) = derived(BREACH)
    assert not route.matches(signal)
    assert route.matches(parse_event(load_event("eventgrid/dataset_drift_detected.json")))
