"""Untrusted event data end to end (the app's functions, Azurite, real local receivers): no property
of an event blocks another route, fails a storage write, shares a record with another event, hangs
past the budget, or puts a secret in a record or a log line."""

from __future__ import annotations

import copy
import json
import logging
import socket
import threading
import time
import uuid
from typing import Any

import pytest

from shared.worker import current_engine
from tests.support.events import load_event
from tests.support.receiver import Reply

FAILED_RUN = load_event("eventgrid/run_status_changed_failed.json")


def failed_run(event_id: str | None = None, **data: Any) -> dict[str, Any]:
    event = copy.deepcopy(FAILED_RUN)
    event["id"] = event_id if event_id is not None else str(uuid.uuid4())
    event["data"].update(data)
    return event


def records(event_id: str) -> list[Any]:
    return sorted(current_engine().ledger.records(event_id=event_id), key=lambda r: (r.route, r.position))


# ---- 1. one large event never blocks other routes ----------------------------------------------------

TWO_ROUTES = """
routes:
  - name: grouped
    events: [RunStatusChanged]
    group: {by: [data.ExperimentName], wait: 10m, max: 100}
    actions:
      - webhook: {url: "${HOOK_URL}/digest", allow_private: true, retry: {attempts: 1}}
  - name: direct
    events: [RunStatusChanged]
    actions:
      - webhook: {url: "${HOOK_URL}/direct", allow_private: true, retry: {attempts: 1}}
"""


def test_a_large_event_is_grouped_and_does_not_block_the_other_route(noise_env, receiver, deliver) -> None:
    noise_env(TWO_ROUTES, HOOK_URL=receiver.url)
    event = failed_run(runTags={"notes": "x" * 33_000, "team": "growth"})
    delivery = deliver("run_events", event)
    assert delivery.error is None, delivery.error
    assert [request.path for request in receiver.requests] == ["/direct"]
    direct, grouped = records(event["id"])
    assert (grouped.route, grouped.status) == ("grouped", "grouped")
    assert (direct.route, direct.status) == ("direct", "done")


def test_a_route_whose_hold_fails_is_recorded_failed_and_the_others_still_act(
    noise_env, receiver, deliver, monkeypatch
) -> None:
    noise_env(TWO_ROUTES, HOOK_URL=receiver.url)
    from azure.core.exceptions import HttpResponseError

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise HttpResponseError(message="PropertyValueTooLarge: the property value exceeds the maximum allowed size")

    monkeypatch.setattr("shared.noise.digests.insert_entity", broken)
    event = failed_run()
    delivery = deliver("run_events", event)
    assert [request.path for request in receiver.requests] == ["/direct"]
    direct, grouped = records(event["id"])
    assert grouped.status == "failed" and "PropertyValueTooLarge" in grouped.detail
    assert direct.status == "done"
    assert delivery.error is not None  # the failed hold is tried again on redelivery


# ---- 2. repeat_interval / cooldown keys from event data ------------------------------------------------

REPEAT = """
routes:
  - name: repeat
    events: [RunStatusChanged]
    repeat_interval: 1h
    key: "{{{{ event.data.RunTags.{tag} }}}}"
    actions:
      - webhook: {{url: "${{HOOK_URL}}/r", allow_private: true, retry: {{attempts: 1}}}}
"""


@pytest.mark.parametrize("key", ["k" * 2000, "a\x01b\x7fc", "a/b#c?d\\e", "\ud800 lone"])
def test_repeat_keys_from_event_data_are_storable(noise_env, receiver, deliver, key: str) -> None:
    noise_env(REPEAT.format(tag="team"), HOOK_URL=receiver.url)
    first, second = failed_run(runTags={"team": key}), failed_run(runTags={"team": key})
    assert deliver("run_events", first).statuses() == ["done"]
    repeated = deliver("run_events", second)
    assert repeated.statuses() == ["skipped"]
    assert "repeat_interval" in repeated.reports[0].detail
    assert len(receiver.requests) == 1


def test_a_guardrail_storage_failure_is_a_failure_not_a_skip(noise_env, receiver, deliver, monkeypatch) -> None:
    noise_env(REPEAT.format(tag="team"), HOOK_URL=receiver.url)
    from azure.data.tables import TableClient, TableTransactionError

    def refuse(self: Any, operations: Any, **kwargs: Any) -> Any:
        raise TableTransactionError(message="InvalidInput: 0:One of the request inputs is not valid.", response=None)

    monkeypatch.setattr(TableClient, "submit_transaction", refuse)
    event = failed_run(runTags={"team": "growth"})
    delivery = deliver("run_events", event)
    (record,) = records(event["id"])
    assert record.status == "failed", record.detail
    assert (
        record.detail
        == "not acted on: repeat_interval storage unavailable: InvalidInput: 0:One of the request inputs is not valid."
    )
    assert delivery.error is not None


# ---- 3. event ids the ledger cannot store ----------------------------------------------------------


@pytest.mark.parametrize(
    "event_id", ["i" * 2000, "ctl\x00\x01\x1f", "del\x7f", "tab\tnew\nline", "#/?\\", "\ud83d", "\u2028\ufeff"]
)
def test_any_event_id_is_recorded(app_env, receiver, deliver, event_id: str) -> None:
    app_env(TWO_ROUTES.split("  - name: direct")[0].replace("grouped", "g").replace(
        "    group: {by: [data.ExperimentName], wait: 10m, max: 100}\n", ""), HOOK_URL=receiver.url)  # fmt: skip
    delivery = deliver("run_events", failed_run(event_id))
    assert delivery.error is None, delivery.error
    (report,) = delivery.reports
    if report.status == "rejected":
        (rejection,) = current_engine().ledger.rejections()
        assert rejection.reason.startswith("id: ")
    else:
        assert report.status == "done"
        assert [r.status for r in records(event_id)] == ["done"]
        assert deliver("run_events", failed_run(event_id)).statuses() == ["skipped"]  # found again


# ---- 4. distinct ids never share a record ------------------------------------------------------------

ONE_HOOK = """
routes:
  - name: hook
    events: [RunStatusChanged, DatasetDriftDetected]
    actions:
      - webhook: {url: "${HOOK_URL}/h", allow_private: true, retry: {attempts: 1}}
"""


@pytest.mark.parametrize(
    ("first", "second"),
    [(" ws-1 ", "ws-1"), ("\ud800", "\\ud800"), ("a/b", "a?b"), ("x" * 300 + "1", "x" * 300 + "2")],
)
def test_distinct_ids_are_distinct_deliveries(app_env, receiver, deliver, first: str, second: str) -> None:
    app_env(ONE_HOOK, HOOK_URL=receiver.url)
    assert deliver("run_events", failed_run(first)).statuses() == ["done"]  # the test's own ledger table
    assert deliver("run_events", failed_run(second)).statuses() == ["done"]
    assert len(receiver.requests) == 2


def test_an_incoming_id_like_a_derived_one_does_not_preempt_the_drift_signal(app_env, receiver, deliver) -> None:
    app_env(ONE_HOOK, HOOK_URL=receiver.url)
    run_id = str(uuid.uuid4())
    row = '{"group":"age","metric_value":0.41,"metric_name":"JensenShannonDistance","threshold_value":0.1}'
    message = f"The signal 'drift' has failed due to one or more features violating metric thresholds. ['{row}']"
    impostor = failed_run(run_id + "/model-monitor")
    impostor["eventType"] = "Microsoft.MachineLearningServices.DatasetDriftDetected"
    impostor["data"] = load_event("eventgrid/dataset_drift_detected.json")["data"]
    assert deliver("drift_detected", impostor).statuses() == ["done"]
    monitored = failed_run(run_id, runTags={"azureml_modelmonitor_threshold_breached": message})
    assert deliver("run_events", monitored).statuses() == ["done", "done"]  # the run and its drift signal
    assert len(receiver.requests) == 3


EMAIL_ROUTE = """
routes:
  - name: mail
    events: [RunStatusChanged]
    actions:
      - email: {to: mlops@contoso.com}
"""


def test_distinct_ids_never_share_an_outbox_file(app_env, deliver, tmp_path) -> None:
    outbox = tmp_path / "outbox"
    app_env(EMAIL_ROUTE, EMAIL_OUTBOX=str(outbox))
    ids = ["a/b", "a?b", "a b", "A b", "y" * 200 + "1", "y" * 200 + "2"]
    for event_id in ids:
        assert deliver("run_events", failed_run(event_id)).statuses() == ["done"]
    assert len(list(outbox.glob("*.eml"))) == len(ids)


# ---- 5. regular expressions on untrusted text ---------------------------------------------------------

MATCHES = """
routes:
  - name: m
    events: [RunStatusChanged]
    when: {data.ExperimentName: {matches: "^(\\\\w+\\\\s?)*$"}}
    actions:
      - log: {}
"""


def test_a_backtracking_pattern_decides_a_crafted_name(app_env, deliver) -> None:
    # Exponential in a backtracking engine (re: hours on this name); linear on RE2.
    app_env(MATCHES)
    assert deliver("run_events", failed_run(experimentName="a " * 30_000 + "!")).statuses() == ["unrouted"]
    assert deliver("run_events", failed_run(experimentName="a " * 30_000)).statuses() == ["done"]


def test_a_pattern_that_needs_backtracking_is_a_validation_problem_with_its_line(app_env, deliver) -> None:
    app_env(MATCHES.replace("^(\\\\w+\\\\s?)*$", "(a)\\\\1"))
    delivery = deliver("run_events", failed_run())
    assert delivery.error is not None
    problem = ".yaml:5: route 'm': data.ExperimentName: regular expression '(a)\\\\1' cannot be used"
    assert problem in str(delivery.error)


# ---- 7. email headers from a huge run id ---------------------------------------------------------------


def test_a_huge_run_id_does_not_stall_the_email(app_env, deliver, tmp_path) -> None:
    outbox = tmp_path / "outbox"
    app_env(EMAIL_ROUTE, EMAIL_OUTBOX=str(outbox))
    # Folding a subject this long took seconds (quadratic); one of 1 MB, minutes.
    delivery = deliver("run_events", failed_run(runId="r" * 200_000, experimentName="e " * 50_000))
    assert delivery.statuses() == ["done"], delivery.reports[0].detail
    (path,) = outbox.glob("*.eml")
    subject = next(line for line in path.read_bytes().splitlines() if line.startswith(b"Subject:"))
    assert len(subject) < 1000


# ---- 8 and 9. no secret in a record, a replay line or a log line -------------------------------------

CHAT = """
routes:
  - name: chat
    events: [RunStatusChanged]
    actions:
      - slack: {url: "${SLACK_URL}", allow_private: true, retry: {attempts: 1}}
      - teams: {url: "${TEAMS_URL}", allow_private: true, retry: {attempts: 1}}
"""
SLACK_SECRET = "T000SECRET/B000SECRET/xoxSECRETslackTOKEN"
TEAMS_SECRET = "sig=TEAMSsecretSIGNATURE123"


def test_chat_webhook_secrets_appear_in_no_record_and_no_log_line(app_env, receiver, deliver) -> None:
    slack_url = f"{receiver.url}/services/{SLACK_SECRET}"
    teams_url = f"{receiver.url}/workflows/abc/triggers/manual/paths/invoke?api-version=1&{TEAMS_SECRET}"
    app_env(CHAT, SLACK_URL=slack_url, TEAMS_URL=teams_url)
    receiver.script(Reply(500, b"no"), Reply(500, b"no"))
    root = logging.getLogger()
    lines: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = lines.append  # type: ignore[method-assign]
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)  # as the Python worker sets it
    try:
        event = failed_run()
        delivery = deliver("run_events", event)
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    texts = [line.getMessage() for line in lines]
    stored = [json.dumps(record.__dict__, default=str) for record in records(event["id"])]
    replayed = [json.dumps(report.to_dict(), default=str) for report in delivery.reports]
    for text in [*texts, *stored, *replayed]:
        for secret in ("SECRET", "TEAMSsecret", "slackTOKEN"):
            assert secret not in text, text
    info = [line for line in lines if line.levelno < logging.WARNING]
    assert all(line.name.startswith("aml_events") for line in info), [(line.name, line.getMessage()) for line in info]
    assert len(lines) <= 6, [(line.name, line.getMessage()) for line in lines]


# ---- 12. rough edges ----------------------------------------------------------------------------------


# An eventTime at the calendar's edge with an offset (0001-01-01T00:00:00+14:00) is refused by the
# Functions worker's own converter before the app runs; replayed from a dead letter, the parser rejects
# it naming the field (tests/unit/shared/events/test_rejections.py), so no reader meets an OverflowError.


DRIFT_HOOK = """
routes:
  - name: drift
    events: [DatasetDriftDetected]
    actions:
      - webhook: {url: "${HOOK_URL}/d", allow_private: true, retry: {attempts: 1}}
"""


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-inf"])
def test_a_non_finite_drift_coefficient_never_makes_invalid_json(app_env, receiver, deliver, value: str) -> None:
    app_env(DRIFT_HOOK, HOOK_URL=receiver.url)
    event = load_event("eventgrid/dataset_drift_detected.json")
    event["id"] = str(uuid.uuid4())
    event["data"]["DriftCoefficient"] = value
    delivery = deliver("drift_detected", event)
    assert delivery.statuses() == ["rejected"]
    assert receiver.requests == []


def test_a_lone_surrogate_in_a_tag_reaches_the_outbox(app_env, deliver, tmp_path) -> None:
    outbox = tmp_path / "outbox"
    app_env(EMAIL_ROUTE, EMAIL_OUTBOX=str(outbox))
    delivery = deliver("run_events", failed_run(experimentName="exp \ud800 x", runTags={"t": "\udfff"}))
    assert delivery.statuses() == ["done"], delivery.reports[0].detail
    assert len(list(outbox.glob("*.eml"))) == 1


# ---- 6 and 7. every path within the budget; a lease outlasting its invocation ----------------------------


def test_a_table_storage_that_never_answers_costs_no_more_than_the_budget(app_env, receiver, deliver, silent_server):
    # Silences are read (and fail open), then the claim cannot be written: the whole delivery, storage
    # retries and backoff included, ends within INVOCATION_BUDGET_SECONDS.
    port = silent_server.rsplit(":", 1)[1]
    storage = ("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey="
               "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
               f"TableEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
               f"BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;")  # fmt: skip
    app_env(ONE_HOOK, HOOK_URL=receiver.url, AzureWebJobsStorage=storage, INVOCATION_BUDGET_SECONDS="3",
            SILENCE_CACHE_SECONDS="0")  # fmt: skip
    started = time.monotonic()
    delivery = deliver("run_events", failed_run())
    elapsed = time.monotonic() - started
    assert delivery.error is not None and "unavailable" in str(delivery.error)
    assert elapsed < 3.5, f"{elapsed:.1f}s against a 3 s budget"
    assert receiver.requests == []  # no action without its claim


def test_a_trickling_receiver_is_cut_at_the_budget_and_its_claim_outlasts_it(app_env, deliver, monkeypatch) -> None:
    # The lease setting is shorter than the budget: the claim must still cover the whole invocation.
    server = _Trickle()
    try:
        app_env(ONE_HOOK, HOOK_URL=server.url, INVOCATION_BUDGET_SECONDS="2", LEDGER_LEASE_SECONDS="0.5")
        event = failed_run()
        started = time.monotonic()
        delivery = deliver("run_events", event)
        assert time.monotonic() - started < 2.5
        (record,) = records(event["id"])
        assert record.status == "failed" and "no answer within" in record.detail
        assert delivery.error is not None
    finally:
        server.close()


def test_an_endless_answer_is_read_up_to_the_cap(app_env, deliver) -> None:
    server = _Trickle(flood=True)
    try:
        app_env(ONE_HOOK, HOOK_URL=server.url)
        assert deliver("run_events", failed_run()).statuses() == ["done"]
        assert server.sent < 64 * 2**20  # the client hung up after its cap, not after gigabytes
    finally:
        server.close()


def test_a_claim_taken_while_the_invocation_runs_is_not_taken_over(app_env, receiver, deliver) -> None:
    app_env(ONE_HOOK, HOOK_URL=receiver.url, INVOCATION_BUDGET_SECONDS="5", LEDGER_LEASE_SECONDS="0.1")
    receiver.script(Reply(delay=1.0))  # slower than the lease setting, within the budget
    event = failed_run()
    results: list[Any] = []
    first = threading.Thread(target=lambda: results.append(deliver("run_events", event)))
    first.start()
    while not receiver.requests:
        time.sleep(0.01)
    time.sleep(0.3)  # past LEDGER_LEASE_SECONDS: a lease of that length would have run out
    second = deliver("run_events", event)  # Event Grid's redelivery meanwhile
    first.join()
    assert second.statuses() == ["skipped"] and second.reports[0].in_progress
    assert results[0].error is None
    (record,) = records(event["id"])
    assert (record.status, record.attempts) == ("done", 1)
    assert len(receiver.requests) == 1


class _Trickle:
    """A receiver that answers one byte every 50 ms, for ever (`flood`: 200 OK and 64 KiB at a time, for
    ever). `sent` counts the body bytes it got out before the client hung up."""

    def __init__(self, *, flood: bool = False) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.stop = threading.Event()
        self.flood = flood
        self.sent = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        self.listener.settimeout(0.1)
        while not self.stop.is_set():
            try:
                connection, _ = self.listener.accept()
            except OSError:
                continue
            threading.Thread(target=self._trickle, args=(connection,), daemon=True).start()

    def _trickle(self, connection: socket.socket) -> None:
        try:
            connection.recv(65536)
            status = b"200 OK" if self.flood else b"500 Oops"
            connection.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Length: 100000000000\r\n\r\n")
            while not self.stop.is_set():
                chunk = b"x" * 65536 if self.flood else b"x"
                connection.sendall(chunk)
                self.sent += len(chunk)
                if not self.flood:
                    time.sleep(0.05)
        except OSError:
            pass
        finally:
            connection.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def close(self) -> None:
        self.stop.set()
        self.listener.close()
