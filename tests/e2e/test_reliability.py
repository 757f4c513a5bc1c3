"""Fault injection: the functions against a real Azurite and real local HTTP receivers that fail on cue.

Each test names the fault and asserts what the issue promises: no event lost, no action doubled
where the ledger can prevent it, and a clear error (raised, so Event Grid redelivers) otherwise.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from scripts import azurite as azurite_tool
from scripts.local_host import binding_for
from shared import worker
from shared.pipeline.reports import observe
from shared.worker import current_engine
from tests.support.events import load_event
from tests.support.receiver import Reply

ROOT = Path(__file__).resolve().parents[2]
FAILED_RUN = load_event("eventgrid/run_status_changed_failed.json")

ROUTE = """
routes:
  - name: alerts
    events: [RunStatusChanged]
    when: {{data.RunStatus: Failed}}
    actions:
      - webhook: {{url: "${{HOOK_URL}}/alerts", allow_private: true, {options}}}
"""


def route(options: str = "retry: {attempts: 3, backoff: 50ms}") -> str:
    return ROUTE.format(options=options)


def webhook_report(delivery):
    (report,) = [r for r in delivery.reports if r.action == "webhook"]
    return report


def test_500_twice_then_200_is_one_delivery_with_three_attempts(app_env, receiver, deliver) -> None:
    app_env(route(), HOOK_URL=receiver.url)
    receiver.script(Reply(500, b"oops"), Reply(500, b"oops again"))
    delivery = deliver("run_events", FAILED_RUN)
    assert delivery.error is None
    report = webhook_report(delivery)
    assert (report.status, report.attempts) == ("done", 3)
    assert [r.headers["idempotency-key"] for r in receiver.requests] == [f"{FAILED_RUN['id']}/alerts/0"] * 3
    (record,) = current_engine().ledger.records(event_id=FAILED_RUN["id"])
    assert (record.status, record.attempts) == ("done", 3)
    assert deliver("run_events", FAILED_RUN).statuses() == ["skipped"]  # a redelivery sends nothing
    assert len(receiver.requests) == 3


def test_a_hung_receiver_times_out_within_the_budget_and_redelivery_completes(app_env, receiver, deliver) -> None:
    app_env(route(), HOOK_URL=receiver.url, INVOCATION_BUDGET_SECONDS="2")
    receiver.script(Reply(delay=10))  # hangs far beyond the budget, then answers normally
    started = time.monotonic()
    first = deliver("run_events", FAILED_RUN)
    elapsed = time.monotonic() - started
    assert elapsed < 2.0, f"the invocation took {elapsed:.2f}s, beyond its 2 s budget"
    assert first.error is not None and "no answer within" in str(first.error)
    assert webhook_report(first).status == "failed"

    second = deliver("run_events", FAILED_RUN)
    assert second.error is None
    report = webhook_report(second)
    assert (report.status, report.attempts) == ("done", 2)
    assert len(receiver.requests) == 2


def test_429_with_retry_after_is_waited_out_then_done(app_env, receiver, deliver) -> None:
    app_env(route("retry: {attempts: 3, backoff: 0s}"), HOOK_URL=receiver.url)
    receiver.script(Reply(429, b"slow down", {"Retry-After": "1"}))
    delivery = deliver("run_events", FAILED_RUN)
    assert delivery.error is None
    assert (webhook_report(delivery).status, webhook_report(delivery).attempts) == ("done", 2)
    first, second = receiver.requests
    assert second.at - first.at >= 1.0, "Retry-After: 1 was not honoured"


def test_a_retry_after_beyond_the_budget_fails_fast_for_event_grid_to_redeliver(app_env, receiver, deliver) -> None:
    app_env(route("retry: {attempts: 3, backoff: 0s}"), HOOK_URL=receiver.url, INVOCATION_BUDGET_SECONDS="3")
    receiver.script(Reply(503, b"maintenance", {"Retry-After": "120"}))
    started = time.monotonic()
    delivery = deliver("run_events", FAILED_RUN)
    assert time.monotonic() - started < 1.0  # no sleeping into Event Grid's 30 s timeout
    assert "time budget spent; Event Grid will redeliver" in str(delivery.error)
    assert len(receiver.requests) == 1


@pytest.mark.slow
def test_azurite_stopped_mid_run_then_restarted(app_env, receiver, deliver) -> None:
    private = azurite_tool.start()
    ports = (private.blob_port, private.queue_port, private.table_port)
    try:
        app_env(route(), HOOK_URL=receiver.url, AzureWebJobsStorage=private.connection_string)
        first_event = FAILED_RUN | {"id": "before-outage"}
        assert deliver("run_events", first_event).error is None
        assert len(receiver.requests) == 1

        private.stop()
        outage = deliver("run_events", FAILED_RUN)
        assert outage.error is not None
        assert "ledger storage unavailable during claim" in str(outage.error)
        assert "no action ran without its claim, Event Grid will redeliver" in str(outage.error)
        assert len(receiver.requests) == 1  # nothing ran without its claim

        private = azurite_tool.start(ports=ports)  # same endpoints; in memory, so the ledger is empty
        redelivery = deliver("run_events", FAILED_RUN)
        assert redelivery.error is None  # the tables are created again on the fly
        assert webhook_report(redelivery).status == "done"
        assert len(receiver.requests) == 2

        # What losing the ledger means: the memory of what was done is gone, so a redelivery of an
        # event handled before the outage acts again. Effectively-once rests on durable storage.
        again = deliver("run_events", first_event)
        assert webhook_report(again).status == "done"
        assert len(receiver.requests) == 3
    finally:
        private.stop()


@pytest.mark.slow
def test_azurite_stopped_while_an_action_runs_raises_naming_the_unrecorded_outcome(app_env, receiver, deliver) -> None:
    private = azurite_tool.start()
    try:
        app_env(route(), HOOK_URL=receiver.url, AzureWebJobsStorage=private.connection_string)
        receiver.script(Reply(delay=1.0))

        def stop_once_the_action_runs() -> None:  # storage goes away after the claim, before the outcome
            while not receiver.requests:
                time.sleep(0.01)
            private.stop()

        stopper = threading.Thread(target=stop_once_the_action_runs)
        stopper.start()
        started = time.monotonic()
        delivery = deliver("run_events", FAILED_RUN)
        elapsed = time.monotonic() - started
        stopper.join()
        # The receiver holds the request 1 s; giving up on storage must take seconds, not the SDK's minutes.
        assert elapsed < 4, f"the invocation took {elapsed:.1f}s after storage went away (storage retries unbounded?)"
        assert delivery.error is not None
        assert "ledger storage unavailable during recording the outcome" in str(delivery.error)
        assert len(receiver.requests) == 1
    finally:
        private.stop()


WORKER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {root!r})
    from scripts.local_host import binding_for, indexed_functions
    import json
    indexed_functions()["run_events"](binding_for(json.loads(sys.argv[1])))
    """
)


@pytest.mark.slow
def test_a_worker_killed_between_claim_and_outcome_is_taken_over_after_the_lease(
    app_env, receiver, deliver, tmp_path
) -> None:
    routes_file = app_env(route("retry: {attempts: 1}"), HOOK_URL=receiver.url, LEDGER_LEASE_SECONDS="2")
    receiver.script(Reply(delay=30))  # the first request is in flight when the worker dies
    env = {**os.environ, "ROUTES_FILE": str(routes_file)}
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER.format(root=str(ROOT)), json.dumps(FAILED_RUN)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while not receiver.requests and time.monotonic() < deadline:
            time.sleep(0.02)
        assert receiver.requests, "the worker never reached the receiver"
        claimed_at = time.monotonic()
    finally:
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()

    early = deliver("run_events", FAILED_RUN)  # within the lease: the claim still looks alive
    assert webhook_report(early).in_progress
    assert early.error is not None and "in progress in another delivery" in str(early.error)
    assert len(receiver.requests) == 1

    time.sleep(max(0.0, claimed_at + 2.1 - time.monotonic()))
    late = deliver("run_events", FAILED_RUN)
    assert late.error is None and webhook_report(late).status == "done"
    assert len(receiver.requests) == 2  # the action ran once more, under the same idempotency key
    assert receiver.requests[0].headers["idempotency-key"] == receiver.requests[1].headers["idempotency-key"]
    assert deliver("run_events", FAILED_RUN).statuses() == ["skipped"]
    assert len(receiver.requests) == 2


def test_fifty_concurrent_deliveries_of_one_event_send_one_message(app_env, receiver, functions) -> None:
    app_env(route(), HOOK_URL=receiver.url)
    receiver.default = Reply(delay=0.3)
    start = threading.Barrier(50)

    def deliver_once() -> worker.DeliveryFailed | None:
        start.wait()
        try:
            functions["run_events"](binding_for(FAILED_RUN))
        except worker.DeliveryFailed as error:
            return error
        return None

    with observe() as reports, ThreadPoolExecutor(max_workers=50) as pool:
        outcomes = list(pool.map(lambda _: deliver_once(), range(50)))
    assert len(receiver.requests) == 1
    statuses = sorted(r.status for r in reports)
    assert statuses.count("done") == 1 and statuses.count("skipped") == 49
    # Deliveries that found it in progress ask Event Grid to come back; none failed for another reason.
    assert all(error is None or "in progress in another delivery" in str(error) for error in outcomes)
    assert functions["run_events"](binding_for(FAILED_RUN)) is None  # afterwards: done, skipped, success
    assert len(receiver.requests) == 1


# ---- observability: one structured log line per outcome ------------------------------------------------


def test_every_outcome_is_one_log_line_with_custom_dimensions(app_env, receiver, deliver, caplog) -> None:
    app_env(route(), HOOK_URL=receiver.url)
    receiver.script(Reply(500))
    with caplog.at_level(logging.INFO, logger="aml_events"):
        deliver("run_events", FAILED_RUN)
    (line,) = [r for r in caplog.records if r.name == "aml_events.outcomes" and r.getMessage().startswith("action ")]
    port = receiver.url.rsplit(":", 1)[1]
    expected = {
        "event_id": FAILED_RUN["id"],
        "event_type": "Microsoft.MachineLearningServices.RunStatusChanged",
        "function": "run_events",
        "route": "alerts",
        "action": "webhook",
        "target_host": f"127.0.0.1:{port}",
        "status": "done",
        "attempts": 2,
    }
    for name, value in expected.items():
        assert getattr(line, name) == value, name
    assert line.duration_ms > 0
    assert json.loads(line.getMessage().split(": ", 1)[1])["target_host"] == f"127.0.0.1:{port}"


def test_the_dimensions_reach_application_insights_as_custom_dimensions(app_env, receiver, deliver) -> None:
    """Through the same OpenTelemetry handler and Azure Monitor envelope the Python worker uses when
    PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY is on: each dimension is its own customDimensions key."""
    exporter_module = pytest.importorskip("azure.monitor.opentelemetry.exporter.export.logs._exporter")
    from opentelemetry.instrumentation.logging.handler import LoggingHandler  # what the distro installs
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

    app_env(route(), HOOK_URL=receiver.url)
    exported = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exported))
    handler = LoggingHandler(logger_provider=provider)
    app_logger = logging.getLogger("aml_events")
    app_logger.addHandler(handler)
    previous_level = app_logger.level
    app_logger.setLevel(logging.INFO)
    try:
        deliver("run_events", FAILED_RUN)
    finally:
        app_logger.removeHandler(handler)
        app_logger.setLevel(previous_level)
    (record,) = [r for r in exported.get_finished_logs() if str(r.log_record.body).startswith("action ")]
    properties = exporter_module._convert_log_to_envelope(record).data.base_data.properties
    assert properties["event_id"] == FAILED_RUN["id"]
    assert properties["status"] == "done" and properties["route"] == "alerts"
    assert properties["function"] == "run_events" and properties["action"] == "webhook"
    assert properties["target_host"].startswith("127.0.0.1:")
    assert properties["attempts"] == "1" and float(properties["duration_ms"]) > 0


def test_the_kusto_queries_read_the_fields_the_log_line_has() -> None:
    """docs/kusto.md selects outcome lines by their first word and reads dimensions by name."""
    import re

    from shared.pipeline.reports import OUTCOME_MESSAGE, ActionReport

    text = (ROOT / "docs" / "kusto.md").read_text()
    assert f'where message startswith "{OUTCOME_MESSAGE} "' in text
    read = set(re.findall(r'd\["(\w+)"\]', text))
    report = ActionReport("e", "t", "f", "r", "webhook", "done", "ok", 0, "host:1/p", 1, 2.0)
    assert read and read <= set(report.dimensions()), read - set(report.dimensions())
