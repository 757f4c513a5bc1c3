"""The ledger's decisions (shared/ledger/base.py), the same for both backends: in memory, and in Table
Storage on Azurite. What one backend does, the other must do too."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.ledger.base import Ledger
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
