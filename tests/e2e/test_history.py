"""Delivery history (scripts/history.py) and rejected records, on Azurite."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest

from scripts import history
from shared.platform.clock import now
from shared.worker import current_engine
from tests.support.events import load_event
from tests.support.receiver import Reply

FAILED_RUN = load_event("eventgrid/run_status_changed_failed.json")
MODEL_REGISTERED = load_event("eventgrid/model_registered.json")

ROUTES = """
routes:
  - name: failed-runs
    events: [RunStatusChanged]
    when: {data.RunStatus: Failed}
    actions:
      - log: {}
      - webhook: {url: "${HOOK_URL}/alerts", allow_private: true, retry: {attempts: 1}}
  - name: models
    events: [ModelRegistered]
    actions:
      - webhook: {url: "${HOOK_URL}/models", allow_private: true, retry: {attempts: 1}}
"""


@pytest.fixture
def delivered(app_env, receiver, deliver) -> None:
    """A failed run (its webhook answered 503), a model registered, and one rejected input."""
    app_env(ROUTES, HOOK_URL=receiver.url)
    receiver.script(Reply(503, b"try later"))
    assert deliver("run_events", FAILED_RUN).error is not None
    assert deliver("model_registered", MODEL_REGISTERED).error is None
    deliver("run_events", FAILED_RUN | {"id": "bad-1", "topic": "not-a-workspace"})


def test_history_lists_every_action_and_the_rejected_input(delivered, capsys) -> None:
    assert history.main([]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["WHEN", "(UTC)", "EVENT", "ROUTE", "ACTION", "TARGET", "STATUS", "ATTEMPTS", "DETAIL"]
    failed = next(line for line in lines if "webhook#1" in line)
    assert FAILED_RUN["id"] in failed and "failed-runs" in failed and " failed " in failed
    assert "503 try later" in failed and "/alerts" in failed
    rejected = next(line for line in lines if "REJECTED" in line)
    assert "bad-1" in rejected and "function run_events" in rejected and "topic:" in rejected
    assert "4 record(s)" in out


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--status", "failed"], {("failed-runs", "webhook#1", "failed")}),
        (["--route", "models"], {("models", "webhook#0", "done")}),
        (["--event", FAILED_RUN["id"]], {("failed-runs", "log#0", "done"), ("failed-runs", "webhook#1", "failed")}),
        (["--status", "rejected"], {("", "", "REJECTED")}),
        (["--event", "bad-1"], {("", "", "REJECTED")}),
        (["--since", "1h", "--route", "failed-runs", "--status", "done"], {("failed-runs", "log#0", "done")}),
    ],
)
def test_filters(delivered, capsys, argv, expected) -> None:
    assert history.main([*argv, "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {(row["route"], row["action"], row["status"]) for row in rows} == expected


def test_since_excludes_older_records(delivered) -> None:
    ledger = current_engine().ledger
    assert history.history(ledger, since=now() + timedelta(seconds=5)) == []
    assert len(history.history(ledger, since=now() - timedelta(minutes=5))) == 4


def test_json_lines_carry_the_error_and_attempts(delivered, capsys) -> None:
    history.main(["--json", "--status", "failed"])
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["event_id"] == FAILED_RUN["id"]
    assert row["attempts"] == 1 and "503" in row["error"]
    assert row["event_type"] == "Microsoft.MachineLearningServices.RunStatusChanged"
    assert row["when"].endswith("+00:00")


def test_a_claim_left_by_a_dead_worker_is_called_out(app_env) -> None:
    from shared.ledger.records import LedgerRecord

    app_env(ROUTES, HOOK_URL="http://127.0.0.1:9")
    current_engine().ledger.claim(LedgerRecord("evt-dead", "r", 0, "webhook", "h", ""), lease_seconds=0)
    (line,) = history.history(current_engine().ledger)
    assert line.status == "running" and line.error.startswith("lease expired")


def test_storage_not_configured_is_a_clear_error(monkeypatch, capsys) -> None:
    from shared.settings import current_settings

    monkeypatch.delenv("AzureWebJobsStorage", raising=False)
    current_settings.cache_clear()
    try:
        assert history.main([]) == 1
    finally:
        current_settings.cache_clear()
    assert "storage is not configured" in capsys.readouterr().err


def test_an_event_is_found_by_the_first_characters_of_its_id(delivered, capsys) -> None:
    assert history.main(["--event", FAILED_RUN["id"][:8], "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {(row["route"], row["action"]) for row in rows} == {("failed-runs", "log#0"), ("failed-runs", "webhook#1")}
    assert {row["event_id"] for row in rows} == {FAILED_RUN["id"]}


def test_the_table_says_why_an_action_did_not_run(app_env, deliver, capsys) -> None:
    from shared.noise.silences import SilenceStore
    from shared.settings import current_settings

    app_env(ROUTES, HOOK_URL="http://127.0.0.1:9", SILENCE_TABLE=f"silences{uuid.uuid4().hex[:8]}")
    SilenceStore(current_settings()).add("failed-runs", [], 3600, "maintenance window")
    event = FAILED_RUN | {"id": f"silenced-{uuid.uuid4().hex[:8]}"}
    assert deliver("run_events", event).error is None
    assert history.main(["--event", event["id"]]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if event["id"] in line]
    assert len(rows) == 2 and all(" skipped " in row and "silenced: maintenance window" in row for row in rows)


def test_an_event_without_records_is_called_out(delivered, capsys) -> None:
    assert history.main(["--event", "never-seen-event"]) == 1
    err = capsys.readouterr().err
    assert "no record of an event 'never-seen-event': either it was not received, or it was received and" in err


def test_resend_runs_one_recorded_action_again_and_records_it_as_a_resend(delivered, receiver, capsys) -> None:
    receiver.script(Reply(200, b"ok"))
    first = len(receiver.requests)
    assert history.main(["resend", FAILED_RUN["id"][:10], "--action", "webhook", "--reason", "receiver fixed"]) == 0
    assert capsys.readouterr().out.startswith(f"resent {FAILED_RUN['id']}/failed-runs/1: done: POST")
    (request,) = receiver.requests[first:]
    assert request.json()["event"]["id"] == FAILED_RUN["id"]  # the event as its record kept it
    assert request.headers["idempotency-key"].startswith(f"{FAILED_RUN['id']}/failed-runs/1/resend-")
    assert history.main(["--event", FAILED_RUN["id"], "--json"]) == 0
    rows = {row["action"]: row for row in map(json.loads, capsys.readouterr().out.splitlines())}
    assert rows["webhook#1"]["status"] == "failed"  # the original stays as it was
    resent = rows["webhook#1 resend"]
    assert resent["status"] == "done"
    assert resent["detail"].startswith("resent by ") and "(receiver fixed)" in resent["detail"]


def test_resend_asks_which_action_when_several_match(delivered, capsys) -> None:
    assert history.main(["resend", FAILED_RUN["id"], "--reason", "x"]) == 2
    err = capsys.readouterr().err
    assert "2 recorded actions of event" in err and "failed-runs log#0" in err and "failed-runs webhook#1" in err


# ---- rejected records keep the whole payload ----------------------------------------------------------


def test_a_small_rejected_payload_is_kept_inline(app_env, deliver) -> None:
    app_env(ROUTES, HOOK_URL="http://127.0.0.1:9")
    bad = FAILED_RUN | {"id": "bad-small", "data": "not json"}
    deliver("run_events", bad)
    ledger = current_engine().ledger
    (rejection,) = ledger.rejections()
    assert rejection.payload_blob == "" and rejection.function == "run_events"
    assert rejection.reason == "data: is a string that is not JSON"
    assert json.loads(ledger.rejected_payload(rejection))["data"] == "not json"


def test_a_large_rejected_payload_goes_whole_to_a_blob(app_env, deliver) -> None:
    app_env(ROUTES, HOOK_URL="http://127.0.0.1:9")
    huge = "x" * 1_000_000  # far beyond Table Storage's 64 KiB per property
    bad = FAILED_RUN | {"id": "bad-large", "topic": "nope", "data": {"runId": "r", "blob": huge}}
    delivery = deliver("run_events", bad)
    assert delivery.error is None and delivery.statuses() == ["rejected"]
    ledger = current_engine().ledger
    (rejection,) = ledger.rejections(event_id="bad-large")
    assert rejection.payload_blob and rejection.payload_size > 1_000_000
    assert len(rejection.payload) == 16_000  # a preview in the table
    whole = json.loads(ledger.rejected_payload(rejection))
    assert whole["data"]["blob"] == huge


def test_a_rejected_non_utf8_payload_is_kept_byte_for_byte(app_env) -> None:
    app_env(ROUTES, HOOK_URL="http://127.0.0.1:9")
    ledger = current_engine().ledger
    body = b'{"id": "\xff\xfe"}'
    ledger.record_rejection("replay", "payload is not UTF-8 text", body, None)
    (rejection,) = ledger.rejections()
    assert rejection.payload_blob
    assert ledger.rejected_payload(rejection) == body
