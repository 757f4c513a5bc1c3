"""The ledger's decisions (shared/ledger/base.py), the same for both backends: in memory, and in Table
Storage on Azurite. What one backend does, the other must do too."""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.ledger.base import Ledger, after_prefix, id_matches
from shared.ledger.memory import MemoryLedger
from shared.ledger.records import DONE, FAILED, GROUPED, RUNNING, SKIPPED, AlreadyHandled, Claim, LedgerRecord
from shared.ledger.table import TableLedger
from shared.platform.clock import now
from shared.settings import Settings


@pytest.fixture(params=["memory", "table"])
def ledger(request: pytest.FixtureRequest) -> Iterator[Ledger]:
    if request.param == "memory":
        yield MemoryLedger()
        return
    azurite = request.getfixturevalue("azurite")
    suffix = uuid.uuid4().hex[:10]
    names = {"LEDGER_TABLE": f"ledger{suffix}", "REJECTED_TABLE": f"rejected{suffix}",
             "REJECTED_CONTAINER": f"rejected{suffix}"}  # fmt: skip
    yield TableLedger(Settings.from_environ({"AzureWebJobsStorage": azurite, **names}))


def record(event_id: str = "evt-1", position: int = 0, status: str = "") -> LedgerRecord:
    return LedgerRecord(event_id, "route", position, "webhook", "hooks.example.com", status)


def test_the_first_claim_wins_and_a_second_sees_it_in_progress(ledger: Ledger) -> None:
    first = ledger.claim(record(), lease_seconds=60)
    second = ledger.claim(record(), lease_seconds=60)
    assert isinstance(first, Claim) and first.record.status == RUNNING
    assert isinstance(second, AlreadyHandled) and second.in_progress


def test_a_finished_action_is_already_handled(ledger: Ledger) -> None:
    claim = ledger.claim(record(), lease_seconds=60)
    assert isinstance(claim, Claim)
    ledger.finish(claim, DONE, "posted", 1, {"status": 200})
    again = ledger.claim(record(), lease_seconds=60)
    assert isinstance(again, AlreadyHandled) and not again.in_progress
    assert (again.record.status, again.record.detail, again.record.extra) == (DONE, "posted", {"status": 200})


def test_a_failed_action_is_taken_over_counting_earlier_attempts(ledger: Ledger) -> None:
    claim = ledger.claim(record(), lease_seconds=60)
    assert isinstance(claim, Claim)
    ledger.finish(claim, FAILED, "503", 3, {})
    retry = ledger.claim(record(), lease_seconds=60)
    assert isinstance(retry, Claim) and retry.previous is not None
    assert retry.previous.status == FAILED and retry.record.attempts == 3


def test_a_claim_whose_lease_ran_out_is_taken_over(ledger: Ledger) -> None:
    ledger.claim(record(), lease_seconds=0)  # a worker claimed the action, then died
    takeover = ledger.claim(record(), lease_seconds=60)
    assert isinstance(takeover, Claim) and takeover.previous is not None and takeover.previous.status == RUNNING


def test_the_outcome_of_a_claim_taken_over_is_not_overwritten_by_the_late_worker(ledger: Ledger) -> None:
    late = ledger.claim(record(), lease_seconds=0)
    takeover = ledger.claim(record(), lease_seconds=60)
    assert isinstance(late, Claim) and isinstance(takeover, Claim)
    ledger.finish(takeover, DONE, "by the new worker", 1, {})
    ledger.finish(late, FAILED, "by the worker that lost its lease", 1, {})
    (stored,) = ledger.records(event_id="evt-1")
    assert (stored.status, stored.detail) == (DONE, "by the new worker")


def test_settle_writes_claim_and_outcome_at_once(ledger: Ledger) -> None:
    settled = ledger.settle(record(status=SKIPPED))
    assert isinstance(settled, Claim)
    (stored,) = ledger.records(event_id="evt-1")
    assert stored.status == SKIPPED and stored.lease_until is None


def test_annotate_and_filters(ledger: Ledger) -> None:
    for position, status in enumerate((GROUPED, DONE)):
        ledger.settle(record(position=position, status=status))
    ledger.settle(record("evt-2", status=DONE))
    ledger.annotate("evt-1", "route", 0, "grouped into digest-1", {"digest": "digest-1"})
    grouped = next(r for r in ledger.records(event_id="evt-1") if r.position == 0)
    assert (grouped.detail, grouped.extra) == ("grouped into digest-1", {"digest": "digest-1"})
    assert {(r.event_id, r.position) for r in ledger.records(status=DONE)} == {("evt-1", 1), ("evt-2", 0)}
    assert len(list(ledger.records(route="route"))) == 3


def test_a_rejected_payload_is_kept_whole_inline_or_stored_beside(ledger: Ledger) -> None:
    small, large, binary = b'{"id": "x"}', b"[" + b" " * 20_000 + b"]", b"\xff\xfe not text"
    for function, payload in (("small", small), ("large", large), ("binary", binary)):
        ledger.record_rejection(function, "payload is not JSON", payload, None)
        ledger.record_rejection(function, "payload is not JSON", payload, None)  # a redelivery: one record
    rejections = {r.function: r for r in ledger.rejections()}
    assert set(rejections) == {"small", "large", "binary"}
    assert not rejections["small"].payload_blob and rejections["large"].payload_blob
    for function, payload in (("small", small), ("large", large), ("binary", binary)):
        assert ledger.rejected_payload(rejections[function]) == payload
        assert rejections[function].payload_size == len(payload)


@settings(max_examples=40, deadline=None)
@given(
    steps=st.lists(
        st.sampled_from(["claim", "expired-claim", "settle-done", "finish-done", "finish-failed"]), max_size=8
    )
)
def test_at_most_one_live_claim_and_nothing_final_is_taken_over(steps: list[str]) -> None:
    """Any sequence of deliveries: a claim is granted only over nothing, a failure or a lapsed lease."""
    ledger = MemoryLedger()
    claims: list[Claim] = []
    for step in steps:
        before = list(ledger.records())
        if step.startswith("finish"):
            if claims:
                ledger.finish(claims[-1], DONE if step == "finish-done" else FAILED, step, 1, {})
            continue
        if step == "settle-done":
            outcome = ledger.settle(record(status=DONE))
        else:
            outcome = ledger.claim(record(), lease_seconds=0 if step == "expired-claim" else 60)
        (previous,) = before or [None]
        open_to_claim = (
            previous is None or previous.status == FAILED or (previous.status == RUNNING and not live(previous))
        )
        assert isinstance(outcome, Claim) == open_to_claim, (step, previous)
        if isinstance(outcome, Claim):
            claims.append(outcome)


def live(record: LedgerRecord) -> bool:
    return record.lease_until is not None and record.lease_until > now()


# ---- edges: the lease boundary, racing takeovers, what a retry and a rejection keep --------------------


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[datetime]:
    """The ledger's clock, frozen; move it by setting clock[0]."""
    moment = [now().replace(microsecond=0)]
    monkeypatch.setattr("shared.ledger.base.now", lambda: moment[0])
    return moment


def test_a_lease_is_live_until_its_last_instant(ledger: Ledger, clock: list[datetime]) -> None:
    claimed_at = clock[0]
    assert isinstance(ledger.claim(record(), lease_seconds=10), Claim)
    clock[0] = claimed_at + timedelta(seconds=10) - timedelta(milliseconds=1)
    assert isinstance(ledger.claim(record(), lease_seconds=10), AlreadyHandled)
    clock[0] = claimed_at + timedelta(seconds=10)
    takeover = ledger.claim(record(), lease_seconds=10)
    assert isinstance(takeover, Claim) and takeover.previous is not None


def test_two_workers_taking_over_one_expired_claim_at_once_make_one_claim(ledger: Ledger) -> None:
    ledger.claim(record(), lease_seconds=0)  # its worker died
    both_read = threading.Barrier(2)
    read = ledger._read
    reads = iter(range(2))

    def read_then_wait(wanted: LedgerRecord) -> Any:
        result = read(wanted)
        if next(reads, None) is not None:  # the two first reads: each has seen the expired claim
            both_read.wait(timeout=10)  # before either replaces it
        return result

    ledger._read = read_then_wait  # type: ignore[method-assign]
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: ledger.claim(record(), lease_seconds=60), range(2)))
    ledger._read = read  # type: ignore[method-assign]
    assert sorted(type(result).__name__ for result in results) == ["AlreadyHandled", "Claim"]
    (handled,) = [result for result in results if isinstance(result, AlreadyHandled)]
    assert handled.in_progress and handled.record.lease_until is not None  # it sees the winner's live claim


def test_a_retry_keeps_the_record_s_creation_time(ledger: Ledger, clock: list[datetime]) -> None:
    created = clock[0]
    first = ledger.claim(record(), lease_seconds=60)
    assert isinstance(first, Claim)
    ledger.finish(first, FAILED, "500", 1, {})
    clock[0] = created + timedelta(minutes=5)
    retry = ledger.claim(record(), lease_seconds=60)
    assert isinstance(retry, Claim)
    ledger.finish(retry, DONE, "200", 2, {})
    (stored,) = ledger.records(event_id="evt-1")
    assert stored.created == created and stored.updated == created + timedelta(minutes=5)


def test_a_rejection_keeps_its_event_type_and_a_bounded_id(ledger: Ledger) -> None:
    ledger.record_rejection("run_events", "data: must be an object", {"id": "x"}, "x", "Microsoft.X.Y")
    long_id = "i" * 5000
    ledger.record_rejection("run_events", "id: too long", {"id": long_id}, long_id, None)
    kept = {rejection.reason: rejection for rejection in ledger.rejections()}
    assert kept["data: must be an object"].event_type == "Microsoft.X.Y"
    assert kept["data: must be an object"].event_id == "x"
    assert kept["id: too long"].event_type == "" and len(kept["id: too long"].event_id) <= 1024


@given(st.lists(st.text(max_size=30), min_size=2, max_size=6, unique=True))
@settings(max_examples=25, deadline=None)
def test_distinct_event_ids_never_share_a_record(event_ids: list[str]) -> None:
    ledger = MemoryLedger()
    for event_id in event_ids:
        assert isinstance(ledger.settle(record(event_id, status=DONE)), Claim)
    assert sorted(r.event_id for r in ledger.records()) == sorted(event_ids)
    assert len({record(event_id).key for event_id in event_ids}) == len(event_ids)


def test_after_its_table_is_recreated_a_claim_costs_one_create_and_one_retry(azurite: str) -> None:
    suffix = uuid.uuid4().hex[:10]
    ledger = TableLedger(Settings.from_environ({"AzureWebJobsStorage": azurite, "LEDGER_TABLE": f"ledger{suffix}",
                                                "REJECTED_TABLE": f"rejected{suffix}"}))  # fmt: skip
    calls: Counter[str] = Counter()
    for table in (ledger.table, ledger.rejected):
        for name in ("create_entity", "create_table"):
            original = getattr(table, name)
            setattr(table, name, lambda *args, _name=name, _original=original, **kwargs: (
                calls.update([_name]), _original(*args, **kwargs))[1])  # fmt: skip
    assert isinstance(ledger.claim(record(), lease_seconds=60), Claim)  # the table does not exist yet
    assert calls == Counter({"create_entity": 2, "create_table": 2})  # 404, both tables created, once more
    calls.clear()
    assert isinstance(ledger.claim(record(position=1), lease_seconds=60), Claim)
    assert calls == Counter({"create_entity": 1})  # a warm worker: one round trip


def test_a_rejection_is_one_record_per_input_and_id_with_the_payload_s_digest(ledger: Ledger) -> None:
    payload = b'{"id": "x", "data": 3}'
    first = ledger.record_rejection("run_events", "data: must be an object", payload, "x")
    again = ledger.record_rejection("run_events", "data: must be an object", payload, "x")  # a redelivery
    other = ledger.record_rejection("run_events", "data: must be an object", payload, "y")
    anonymous = ledger.record_rejection("run_events", "no id", payload, None)
    assert first == again and len({first, other, anonymous}) == 3
    kept = {rejection.event_id: rejection for rejection in ledger.rejections()}
    assert set(kept) == {"x", "y", ""}
    assert kept["x"].payload_sha256 == hashlib.sha256(payload).hexdigest()
    assert kept["x"].payload_blob == "" and kept["x"].payload_size == len(payload)
    assert ledger.rejected_payload(kept[""]) == payload


def test_a_settled_outcome_over_a_failed_try_counts_both_attempts(ledger: Ledger) -> None:
    failed = ledger.claim(record(), lease_seconds=60)
    assert isinstance(failed, Claim)
    ledger.finish(failed, FAILED, "500", 2, {})
    settled = record(status=DONE)
    settled.attempts = 1
    assert isinstance(ledger.settle(settled), Claim)
    (stored,) = ledger.records(event_id="evt-1")
    assert (stored.status, stored.attempts) == (DONE, 3)


@pytest.mark.parametrize(("operation", "what"), [("update_entity", "claim takeover"), ("get_entity", "claim")])
def test_storage_failing_mid_claim_says_during_what(azurite: str, operation: str, what: str) -> None:
    from azure.core.exceptions import ServiceRequestError

    from shared.ledger.records import LedgerUnavailable

    suffix = uuid.uuid4().hex[:10]
    ledger = TableLedger(Settings.from_environ({"AzureWebJobsStorage": azurite, "LEDGER_TABLE": f"ledger{suffix}",
                                                "REJECTED_TABLE": f"rejected{suffix}"}))  # fmt: skip
    ledger.claim(record(), lease_seconds=0)

    def unreachable(*args: Any, **kwargs: Any) -> Any:
        raise ServiceRequestError("connection refused")

    setattr(ledger.table, operation, unreachable)
    with pytest.raises(LedgerUnavailable) as raised:
        ledger.claim(record(), lease_seconds=60)
    assert str(raised.value) == f"ledger storage unavailable during {what}: connection refused"


def test_records_by_id_prefix(ledger: Ledger) -> None:
    for event_id in ("run-1", "run-2", "runner", "ru", "other"):
        ledger.settle(record(event_id, status=DONE))
    found = {r.event_id for r in ledger.records(event_id="run-", prefix=True)}
    assert found == {"run-1", "run-2"}
    assert {r.event_id for r in ledger.records(event_id="run-1")} == {"run-1"}
    assert after_prefix("run-") == "run." and after_prefix("ab") == "ac"
    assert id_matches("run-1", None, False) and id_matches("run-1", "run-1", False)
    assert not id_matches("run-1", "run-", False) and id_matches("run-1", "run-", True)
    assert not id_matches("other", "run-", True)


def test_storage_failing_while_recording_the_outcome_says_so(azurite: str) -> None:
    from azure.core.exceptions import ServiceRequestError

    from shared.ledger.records import LedgerUnavailable

    suffix = uuid.uuid4().hex[:10]
    ledger = TableLedger(Settings.from_environ({"AzureWebJobsStorage": azurite, "LEDGER_TABLE": f"ledger{suffix}",
                                                "REJECTED_TABLE": f"rejected{suffix}"}))  # fmt: skip
    claim = ledger.claim(record(), lease_seconds=60)
    assert isinstance(claim, Claim)

    def unreachable(*args: Any, **kwargs: Any) -> Any:
        raise ServiceRequestError("connection refused")

    ledger.table.update_entity = unreachable  # type: ignore[method-assign]
    with pytest.raises(LedgerUnavailable) as raised:
        ledger.finish(claim, DONE, "200", 1, {})
    assert str(raised.value) == "ledger storage unavailable during recording the outcome: connection refused"
