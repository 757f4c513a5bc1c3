"""The function app end to end: functions from the app index, the ledger on Azurite, webhooks
received by a real local HTTP server."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest

from scripts.local_host import binding_for
from shared import worker
from shared.ledger.records import RUNNING, LedgerRecord
from shared.pipeline.reports import observe
from shared.platform.clock import now
from shared.worker import current_engine
from tests.support.events import load_event
from tests.support.ledger_calls import ledger_calls
from tests.support.receiver import Reply

FAILED_RUN = load_event("eventgrid/run_status_changed_failed.json")

WEBHOOK_ROUTE = """
routes:
  - name: failed-runs
    events: [RunStatusChanged]
    when: {data.RunStatus: [Failed, Canceled]}
    actions:
      - log: {}
      - webhook: {url: "${HOOK_URL}/alerts", allow_private: true, retry: {attempts: 1}}
"""


def test_an_event_reaches_the_receiver_and_is_recorded(app_env, receiver, deliver) -> None:
    app_env(WEBHOOK_ROUTE, HOOK_URL=receiver.url)
    delivery = deliver("run_events", FAILED_RUN)
    assert delivery.error is None
    assert sorted(delivery.statuses()) == ["done", "done"]
    (request,) = receiver.requests
    assert request.path == "/alerts"
    body = request.json()
    assert body["route"] == "failed-runs"
    assert body["event"]["id"] == FAILED_RUN["id"]
    assert body["event"]["fields"]["run_status"] == "Failed"
    assert request.headers["idempotency-key"] == f"{FAILED_RUN['id']}/failed-runs/1"
    records = {r.position: r for r in current_engine().ledger.records(event_id=FAILED_RUN["id"])}
    assert records[1].status == "done" and records[1].attempts == 1
    assert records[1].target == f"127.0.0.1:{receiver.url.rsplit(':', 1)[1]}/alerts"
    assert records[0].kind == "log" and records[0].status == "done"


def test_the_same_event_delivered_twice_reaches_the_receiver_once(app_env, receiver, deliver) -> None:
    app_env(WEBHOOK_ROUTE, HOOK_URL=receiver.url)
    first, second = deliver("run_events", FAILED_RUN), deliver("run_events", FAILED_RUN)
    assert first.statuses() == ["done", "done"]
    assert second.statuses() == ["skipped", "skipped"]
    assert all(r.detail.startswith("already done") for r in second.reports)
    assert len(receiver.requests) == 1


def test_the_same_event_delivered_twice_at_once_reaches_the_receiver_once(app_env, receiver, functions) -> None:
    app_env(WEBHOOK_ROUTE, HOOK_URL=receiver.url)
    receiver.default = Reply(delay=0.3)  # keep the first claim live while the second arrives
    errors = []

    def deliver_once() -> None:
        try:
            functions["run_events"](binding_for(FAILED_RUN))
        except Exception as error:
            errors.append(error)

    with observe() as reports:
        threads = [threading.Thread(target=deliver_once) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(receiver.requests) == 1
    assert sorted(r.status for r in reports if r.action == "webhook") == ["done", "skipped"]
    # A delivery that found an action in progress asks Event Grid to come back and confirm it finished
    # (each delivery may have won one of the two actions, so both may ask).
    assert errors
    assert all(isinstance(e, worker.DeliveryFailed) and "in progress in another delivery" in str(e) for e in errors)


def test_a_failed_action_makes_the_function_raise_and_redelivery_completes_it(app_env, receiver, deliver) -> None:
    second = type(receiver)()
    try:
        app_env(
            WEBHOOK_ROUTE.replace(
                "      - log: {}\n", f'      - webhook: {{url: "{second.url}/ok", allow_private: true}}\n'
            ),
            HOOK_URL=receiver.url,
        )
        receiver.script(Reply(503, b"down for maintenance"))
        first = deliver("run_events", FAILED_RUN)
        assert first.error is not None  # Event Grid will redeliver
        assert "1 of 2 actions failed" in str(first.error)
        assert "503 down for maintenance" in str(first.error)
        assert sorted(first.statuses()) == ["done", "failed"]

        redelivery = deliver("run_events", FAILED_RUN)
        assert redelivery.error is None
        by_target = {r.target.split("/")[-1]: r for r in redelivery.reports}
        assert by_target["ok"].status == "skipped"  # done actions are not repeated
        assert by_target["alerts"].status == "done"
        assert by_target["alerts"].attempts == 2  # counted across deliveries
        assert len(second.requests) == 1 and len(receiver.requests) == 2
    finally:
        second.close()


def test_a_permanent_4xx_is_not_retried_within_the_invocation(app_env, receiver, deliver) -> None:
    app_env(WEBHOOK_ROUTE.replace("retry: {attempts: 1}", "retry: {attempts: 3, backoff: 0s}"), HOOK_URL=receiver.url)
    receiver.default = Reply(404, b"no such hook")
    delivery = deliver("run_events", FAILED_RUN)
    webhook = next(r for r in delivery.reports if r.action == "webhook")
    assert webhook.status == "failed" and webhook.attempts == 1
    assert len(receiver.requests) == 1


def test_a_claim_left_by_a_dead_worker_is_taken_over_after_its_lease(app_env, receiver, deliver) -> None:
    app_env(WEBHOOK_ROUTE, HOOK_URL=receiver.url)
    ledger = current_engine().ledger
    record = LedgerRecord(FAILED_RUN["id"], "failed-runs", 1, "webhook", "", "", event_type="x", function="run_events")
    ledger.claim(record, lease_seconds=0.5)  # a worker claimed the action, then died
    early = deliver("run_events", FAILED_RUN)
    webhook = next(r for r in early.reports if r.action == "webhook")
    assert (webhook.status, webhook.detail) == ("skipped", "in progress in another delivery")
    assert receiver.requests == []
    time.sleep(0.6)
    late = deliver("run_events", FAILED_RUN)
    assert next(r for r in late.reports if r.action == "webhook").status == "done"
    assert len(receiver.requests) == 1


LOG_ROUTE = """
routes:
  - name: audit
    events: [RunStatusChanged]
    actions:
      - log: {message: "run failed"}
"""


def log_lines(caplog: pytest.LogCaptureFixture, event_id: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "aml_events.actions.log" and event_id in r.getMessage()]


def test_a_log_action_is_recorded_in_one_ledger_write(app_env, deliver, caplog) -> None:
    app_env(LOG_ROUTE)
    with caplog.at_level("INFO"), ledger_calls() as calls:
        delivery = deliver("run_events", FAILED_RUN)
    assert delivery.error is None and delivery.statuses() == ["done"]
    assert dict(calls) == {"create_entity": 1}  # the claim's insert is the outcome: no update after it
    (record,) = current_engine().ledger.records(event_id=FAILED_RUN["id"])
    assert (record.status, record.detail, record.attempts) == ("done", "logged: run failed", 1)
    assert record.lease_until is None
    assert len(log_lines(caplog, FAILED_RUN["id"])) == 1
    with ledger_calls() as calls:
        assert deliver("run_events", FAILED_RUN).statuses() == ["skipped"]
    assert dict(calls) == {"create_entity": 1, "get_entity": 1}
    assert len(log_lines(caplog, FAILED_RUN["id"])) == 1


def test_a_log_action_delivered_many_times_at_once_logs_once(app_env, functions, caplog) -> None:
    app_env(LOG_ROUTE)

    def deliver_once() -> None:
        functions["run_events"](binding_for(FAILED_RUN))

    with caplog.at_level("INFO"), observe() as reports:
        threads = [threading.Thread(target=deliver_once) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sorted(r.status for r in reports) == ["done"] + ["skipped"] * 7
    assert len(log_lines(caplog, FAILED_RUN["id"])) == 1


def test_a_log_line_that_cannot_be_written_is_recorded_failed_and_written_on_redelivery(
    app_env, deliver, caplog, monkeypatch
) -> None:
    app_env(LOG_ROUTE)
    from handlers.log import LogAction

    # Fault injection: the handler's own run raises once (nothing else is replaced).
    real_run, calls = LogAction.run, []

    def run_failing_once(self, ctx):
        calls.append(ctx.key)
        if len(calls) == 1:
            raise OSError("log stream closed")
        return real_run(self, ctx)

    monkeypatch.setattr(LogAction, "run", run_failing_once)
    with caplog.at_level("INFO"):
        first = deliver("run_events", FAILED_RUN)
        assert first.statuses() == ["failed"] and "OSError: log stream closed" in str(first.error)
        (record,) = current_engine().ledger.records(event_id=FAILED_RUN["id"])
        assert record.status == "failed"
        redelivery = deliver("run_events", FAILED_RUN)
    assert redelivery.error is None and redelivery.statuses() == ["done"]
    assert redelivery.reports[0].attempts == 2
    (record,) = current_engine().ledger.records(event_id=FAILED_RUN["id"])
    assert (record.status, record.attempts) == ("done", 2)
    assert len(log_lines(caplog, FAILED_RUN["id"])) == 1


def test_a_webhook_action_is_claimed_before_and_recorded_after_it_runs(app_env, receiver, deliver) -> None:
    app_env(WEBHOOK_ROUTE.replace("      - log: {}\n", ""), HOOK_URL=receiver.url)
    with ledger_calls() as calls:
        assert deliver("run_events", FAILED_RUN).statuses() == ["done"]
    assert dict(calls) == {"create_entity": 1, "update_entity": 1}


def test_unmatched_events_are_reported_unrouted(app_env, deliver) -> None:
    app_env(WEBHOOK_ROUTE, HOOK_URL="http://127.0.0.1:9")
    running = load_event("quirks/run_status_running_not_failed.json")
    delivery = deliver("run_events", running)
    assert [(r.status, r.route) for r in delivery.reports] == [("unrouted", None)]


@pytest.mark.parametrize(
    ("file", "message"),
    [
        ("bad/missing_id.json", "id: is missing"),
        ("bad/data_not_object.json", "data: is a string that is not JSON"),
        ("bad/topic_not_workspace.json", "topic: "),
        ("bad/unknown_event_type.json", "eventType: 'Microsoft.Storage.BlobTierChanged' is not an event type"),
    ],
)
def test_rejected_events_are_recorded_and_do_not_raise(app_env, deliver, file, message) -> None:
    app_env(WEBHOOK_ROUTE, HOOK_URL="http://127.0.0.1:9")
    raw = load_event(file)
    delivery = deliver("run_events", raw)
    assert delivery.error is None  # no 24-hour redelivery of a poison event
    (report,) = delivery.reports
    assert report.status == "rejected" and message in report.detail
    stored = list(current_engine().ledger.rejected.list_entities())
    assert len(stored) == 1
    assert stored[0]["function"] == "run_events" and message in stored[0]["reason"]
    assert stored[0]["payload"]


def test_an_event_sent_to_the_wrong_function_is_rejected(app_env, deliver) -> None:
    app_env(WEBHOOK_ROUTE, HOOK_URL="http://127.0.0.1:9")
    delivery = deliver("model_registered", FAILED_RUN)
    assert delivery.statuses() == ["rejected"]
    assert "is taken by function run_events, not model_registered" in delivery.reports[0].detail


def test_actions_of_one_event_run_concurrently(app_env, receiver, deliver) -> None:
    hooks = "\n".join(f'      - webhook: {{url: "{receiver.url}/{i}", allow_private: true}}' for i in range(4))
    app_env(f"routes:\n  - name: fan-out\n    events: [RunStatusChanged]\n    actions:\n{hooks}\n")
    receiver.default = Reply(delay=0.4)
    started = time.monotonic()
    delivery = deliver("run_events", FAILED_RUN)
    elapsed = time.monotonic() - started
    assert delivery.statuses() == ["done"] * 4
    assert elapsed < 1.2, f"4 actions of 0.4 s took {elapsed:.2f} s: they did not overlap"


def test_storage_down_raises_clearly_and_runs_nothing(app_env, receiver, deliver, monkeypatch) -> None:
    app_env(WEBHOOK_ROUTE, HOOK_URL=receiver.url)
    unreachable = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
        "TableEndpoint=http://127.0.0.1:9/devstoreaccount1;BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;"
    )
    app_env(WEBHOOK_ROUTE, HOOK_URL=receiver.url, AzureWebJobsStorage=unreachable)
    delivery = deliver("run_events", FAILED_RUN)
    assert delivery.error is not None
    assert "ledger storage unavailable" in str(delivery.error)
    assert "no action ran without its claim" in str(delivery.error)
    assert receiver.requests == []


def test_a_running_record_is_not_final(app_env) -> None:
    app_env(WEBHOOK_ROUTE, HOOK_URL="http://127.0.0.1:9")
    ledger = current_engine().ledger
    record = LedgerRecord("evt-lease", "r", 0, "log", "", "")
    claim = ledger.claim(record, lease_seconds=60)
    (stored,) = ledger.records(event_id="evt-lease")
    assert stored.status == RUNNING
    assert stored.lease_until is not None and stored.lease_until > now() + timedelta(seconds=50)
    ledger.finish(claim, "done", "ok", 1, {"path": "x"})
    (stored,) = ledger.records(event_id="evt-lease")
    assert (stored.status, stored.extra, stored.lease_until) == ("done", {"path": "x"}, None)
