"""scripts/replay.py and scripts/send_event.py, run as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.events import EVENTS
from tests.support.receiver import Receiver, Reply
from tests.support.scripts import lines, replay, run_script


def test_dry_run_plans_every_sample_without_storage() -> None:
    result = replay("--dry-run", "--json", str(EVENTS / "eventgrid"), str(EVENTS / "cloudevents"), env={"PATH": ""})
    assert result.returncode == 0, result.stderr
    outcomes = lines(result)
    assert {o["status"] for o in outcomes} == {"planned"}
    assert {o["function"] for o in outcomes} == {"run_events", "model_registered", "model_deployed", "drift_detected"}
    for outcome in outcomes:
        assert {"event_id", "event_type", "function", "route", "action", "status", "detail"} <= outcome.keys()


def test_rejected_and_unrouted_inputs_and_exit_status_2() -> None:
    result = replay(
        "--dry-run", "--json", str(EVENTS / "bad"), str(EVENTS / "quirks" / "run_status_running_not_failed.json")
    )
    assert result.returncode == 2
    outcomes = lines(result)
    rejected = [o for o in outcomes if o["status"] == "rejected"]
    assert len(rejected) == len(list((EVENTS / "bad").glob("*.json")))
    assert any("not_json.json is not JSON" in o["detail"] for o in rejected)
    assert any(o["detail"].startswith("id: is missing") for o in rejected)
    (unrouted,) = [o for o in outcomes if o["status"] == "unrouted"]
    assert unrouted["route"] is None and unrouted["event_type"].endswith("RunStatusChanged")


@pytest.fixture
def webhook_routes(tmp_path: Path) -> Path:
    path = tmp_path / "routes.yaml"
    path.write_text(
        "routes:\n  - name: hook\n    events: [RunStatusChanged]\n    actions:\n"
        '      - webhook: {url: "${HOOK_URL}", allow_private: true, retry: {attempts: 1}}\n'
    )
    return path


def test_replay_with_azurite_runs_actions_and_exits_1_when_one_fails(azurite, webhook_routes, receiver) -> None:
    env = {"PATH": "", "AzureWebJobsStorage": azurite, "LEDGER_TABLE": "replayledger", "HOOK_URL": receiver.url}
    event = str(EVENTS / "eventgrid" / "run_status_changed_failed.json")
    receiver.script(Reply(500, b"boom"))
    failed = replay("--json", "--routes", str(webhook_routes), event, env=env)
    assert failed.returncode == 1
    assert [o["status"] for o in lines(failed)] == ["failed"]
    done = replay("--json", "--routes", str(webhook_routes), event, env=env)
    assert done.returncode == 0
    assert [(o["status"], o["attempts"]) for o in lines(done)] == [("done", 2)]
    again = replay("--routes", str(webhook_routes), event, env=env)  # the readable table
    assert again.returncode == 0
    assert "skipped" in again.stdout and "already done" in again.stdout
    assert len(receiver.requests) == 2


def test_replay_explains_missing_storage(webhook_routes) -> None:
    result = replay(
        "--routes",
        str(webhook_routes),
        str(EVENTS / "eventgrid"),
        env={"PATH": "", "HOOK_URL": "https://hooks.example.com/x"},
    )
    assert result.returncode == 1
    assert "storage is not configured" in result.stderr and "--azurite" in result.stderr


def test_replay_reports_an_invalid_routes_file(tmp_path: Path) -> None:
    bad = tmp_path / "routes.yaml"
    bad.write_text("routes:\n  - name: x\n    events: [Nope]\n    actions: [log]\n")
    result = replay("--dry-run", "--routes", str(bad), str(EVENTS / "eventgrid"))
    assert result.returncode == 1
    assert f"{bad}:3: route 'x': unknown event type 'Nope'" in result.stderr


def test_send_event_posts_as_event_grid_does() -> None:
    host = Receiver()  # stands in for `func start`: records what the Event Grid extension would receive
    host.default = Reply(202, b"")
    try:
        result = run_script(
            "send_event", "--host", host.url,
            str(EVENTS / "eventgrid" / "model_registered.json"), str(EVENTS / "cloudevents" / "run_completed.json"),
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        grid, cloud = host.requests
        assert grid.path == "/runtime/webhooks/EventGrid?functionName=model_registered"
        assert grid.headers["aeg-event-type"] == "Notification"
        assert isinstance(grid.json(), list) and grid.json()[0]["eventType"].endswith("ModelRegistered")
        assert cloud.path == "/runtime/webhooks/EventGrid?functionName=run_events"
        assert cloud.json()["specversion"] == "1.0"
    finally:
        host.close()


def test_send_event_says_which_events_the_worker_will_refuse_and_why_others_go_nowhere(tmp_path: Path) -> None:
    host = Receiver()
    host.default = Reply(202, b"")
    event = json.loads((EVENTS / "eventgrid" / "model_registered.json").read_text())
    event = event[0] if isinstance(event, list) else event
    refused = tmp_path / "refused.json"
    refused.write_text(json.dumps(event | {"id": "bad-time", "eventTime": "2025-01-01"}))
    miscased = tmp_path / "miscased.json"
    miscased.write_text(json.dumps({"specVersion": "1.0", "type": "RunCompleted", "id": "x", "source": "s"}))
    try:
        result = run_script("send_event", "--host", host.url, str(refused), str(miscased))
        assert result.returncode == 1  # the miscased event was not sent
        assert "bad-time: expect a failed invocation: eventTime '2025-01-01'" in result.stdout
        assert "skipped, no function takes it: specVersion: CloudEvents attribute names are lower case" in result.stdout
        assert [request.json()[0]["id"] for request in host.requests] == ["bad-time"]  # still sent, as a user asked
    finally:
        host.close()
