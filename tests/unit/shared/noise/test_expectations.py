"""The expectation store against Azurite, with the clock in the test's hands: open, follow-up in time /
late / never, duplicate openings, racing timers, a restart between open and fire, expired state."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.events.expectation import EXPECTATION_MISSED, EXPECTATION_RESOLVED_LATE
from shared.events.parse import parse_event
from shared.noise.expectation_rows import COLLECT, FIRE
from shared.noise.expectations import RETENTION, ExpectationStore
from shared.routing.expect import EventFilter, FollowUp, Recurring
from shared.settings import Settings

RUN_STATUS_CHANGED = "Microsoft.MachineLearningServices.RunStatusChanged"
RUN_COMPLETED = "Microsoft.MachineLearningServices.RunCompleted"
TOPIC = (
    "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/rg/providers/"
    "Microsoft.MachineLearningServices/workspaces/mlw"
)


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def run_event(status: str, run_id: str = "run-1", at: datetime | None = None, event_id: str | None = None) -> Any:
    return parse_event({
        "topic": TOPIC, "subject": f"experiments/e1/runs/{run_id}", "eventType": RUN_STATUS_CHANGED,
        "eventTime": (at or datetime(2026, 12, 2, 1, 0, tzinfo=UTC)).isoformat(), "id": event_id or uuid.uuid4().hex,
        "data": {"experimentId": "e1", "experimentName": "churn", "runId": run_id, "runStatus": status},
        "dataVersion": "",
    })  # fmt: skip


def completed(run_id: str = "run-1", at: datetime | None = None, event_id: str | None = None) -> Any:
    return parse_event({
        "topic": TOPIC, "subject": f"experiments/e1/runs/{run_id}", "eventType": RUN_COMPLETED,
        "eventTime": (at or datetime(2026, 12, 2, 1, 0, tzinfo=UTC)).isoformat(), "id": event_id or uuid.uuid4().hex,
        "data": {"experimentId": "e1", "experimentName": "churn-nightly", "runId": run_id}, "dataVersion": "",
    })  # fmt: skip


FOLLOW = FollowUp(6 * 3600, EventFilter((RUN_STATUS_CHANGED, RUN_COMPLETED)), ("data.RunId",))
START = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)


@pytest.fixture
def settings(azurite: str) -> Settings:
    return Settings.from_environ({"AzureWebJobsStorage": azurite, "EXPECT_TABLE": f"exp{uuid.uuid4().hex[:10]}"})


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
def store(settings: Settings, clock: Clock) -> ExpectationStore:
    return ExpectationStore(settings, clock)


def test_a_follow_up_in_time_closes_silently(store: ExpectationStore, clock: Clock) -> None:
    assert store.open("stuck", FOLLOW, run_event("Running")).status == "opened"
    clock.at = START + timedelta(hours=2)
    step = store.follow_up("stuck", FOLLOW, completed(at=clock.at))
    assert (step.status, step.late) == ("closed", None)
    clock.at = START + timedelta(hours=7)
    assert [due.kind for due in store.due()] == []  # the fire row went with the close


def test_never_followed_up_fires_once_when_due(store: ExpectationStore, clock: Clock) -> None:
    opening = run_event("Running")
    store.open("stuck", FOLLOW, opening)
    clock.at = START + timedelta(hours=5, minutes=59)
    assert store.due() == []
    clock.at = START + timedelta(hours=6, minutes=1)
    (due,) = store.due()
    missed = store.take(due, 300, FOLLOW)
    assert missed is not None and missed.event_type == EXPECTATION_MISSED
    assert missed.opening is not None and missed.opening.id == opening.id
    assert missed.deadline == START + timedelta(hours=6) and missed.since == START
    assert "runs/run-1" in missed.studio_url
    store.fired(due, settled=True)
    assert store.due() == []  # the collect row is two days away
    clock.at += RETENTION + timedelta(minutes=1)
    assert [due.kind for due in store.due()] == [COLLECT]


def test_late_follow_up_closes_and_makes_the_resolved_late_notice(store: ExpectationStore, clock: Clock) -> None:
    spec = FollowUp(FOLLOW.within, FOLLOW.event, FOLLOW.same, resolved_late=True)
    store.open("stuck", spec, run_event("Running"))
    clock.at = START + timedelta(hours=6, minutes=1)
    (due,) = store.due()
    assert store.take(due, 300, spec) is not None
    store.fired(due, settled=True)
    clock.at = START + timedelta(hours=8)
    step = store.follow_up("stuck", spec, completed(at=clock.at))
    assert step.status == "late"
    assert step.late is not None and step.late.event_type == EXPECTATION_RESOLVED_LATE
    assert "2h00 after the deadline" in step.late.title
    assert step.late.id.endswith("/resolved-late")
    # Without the option a late follow-up still closes, quietly.
    store.open("stuck", FOLLOW, run_event("Running", run_id="run-2"))
    clock.at += timedelta(hours=7)
    late = store.follow_up("stuck", FOLLOW, completed(run_id="run-2", at=clock.at))
    assert (late.status, late.late) == ("late", None)


def test_duplicate_opening_events_open_one_expectation(store: ExpectationStore, clock: Clock) -> None:
    opening = run_event("Running", event_id="same-id")
    assert store.open("stuck", FOLLOW, opening).status == "opened"
    clock.at += timedelta(minutes=3)
    assert store.open("stuck", FOLLOW, opening).status == "open"
    assert store.open("stuck", FOLLOW, run_event("Running")).status == "open"  # another Running, same run
    clock.at = START + timedelta(hours=7)
    dues = store.due()
    assert len(dues) == 1 and dues[0].kind == FIRE


def test_two_timers_at_once_fire_once(settings: Settings, clock: Clock) -> None:
    first, second = ExpectationStore(settings, clock), ExpectationStore(settings, clock)
    first.open("stuck", FOLLOW, run_event("Running"))
    clock.at = START + timedelta(hours=6, minutes=1)
    (due_a,), (due_b,) = first.due(), second.due()
    taken = [first.take(due_a, 300, FOLLOW), second.take(due_b, 300, FOLLOW)]
    assert sum(missed is not None for missed in taken) == 1


def test_a_timer_that_died_while_firing_is_resumed_after_its_lease(settings: Settings, clock: Clock) -> None:
    ExpectationStore(settings, clock).open("stuck", FOLLOW, run_event("Running"))
    clock.at = START + timedelta(hours=6, minutes=1)
    dead = ExpectationStore(settings, clock)
    (due,) = dead.due()
    first = dead.take(due, 300, FOLLOW)
    assert first is not None  # ... and the worker dies before `fired`
    restarted = ExpectationStore(settings, clock)
    (again,) = restarted.due()
    assert restarted.take(again, 300, FOLLOW) is None  # the lease is live
    clock.at += timedelta(minutes=6)
    resumed = restarted.take(again, 300, FOLLOW)
    assert resumed is not None and resumed.id == first.id  # same ledger key: the ledger skips what was done


def test_a_follow_up_delivered_before_its_opening_event_opens_nothing(store: ExpectationStore, clock: Clock) -> None:
    store.follow_up("stuck", FOLLOW, completed(at=START + timedelta(minutes=5)))
    clock.at = START + timedelta(minutes=6)
    step = store.open("stuck", FOLLOW, run_event("Running", at=START))
    assert step.status == "closed"


def test_at_least_counts_distinct_events(store: ExpectationStore, clock: Clock) -> None:
    spec = FollowUp(3600, EventFilter((RUN_COMPLETED,)), (), at_least=2)
    store.open("two", spec, run_event("Running"))
    again = completed(event_id="c1")
    assert store.follow_up("two", spec, again).status == "counted"
    assert store.follow_up("two", spec, again).status == "counted"  # a redelivery counts once
    assert store.follow_up("two", spec, completed(event_id="c2")).status == "closed"


def test_expired_state_is_collected(store: ExpectationStore, clock: Clock, settings: Settings) -> None:
    store.open("stuck", FOLLOW, run_event("Running"))
    store.follow_up("stuck", FOLLOW, completed())
    clock.at += RETENTION + timedelta(minutes=1)
    (due,) = store.due()
    store.collect(due)
    assert list(store.table.list_entities()) == []


def test_recurring_window_fires_when_empty_and_not_when_the_event_came(store: ExpectationStore, clock: Clock) -> None:
    spec = Recurring(frozenset(range(7)), 7 * 60, "Europe/Paris", EventFilter((RUN_COMPLETED,)), since=19 * 60)
    clock.at = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    store.arm("nightly", spec)  # window: Dec 1 19:00 -> Dec 2 07:00 Paris (18:00Z -> 06:00Z)
    clock.at = datetime(2026, 12, 1, 23, 5, tzinfo=UTC)
    assert store.record("nightly", spec, completed(at=datetime(2026, 12, 1, 23, 0, tzinfo=UTC))).status == "closed"
    clock.at = datetime(2026, 12, 2, 6, 1, tzinfo=UTC)
    store.arm("nightly", spec)  # the next window (Dec 3)
    assert [due for due in store.due() if due.kind == FIRE] == []
    clock.at = datetime(2026, 12, 3, 6, 1, tzinfo=UTC)
    (due,) = [due for due in store.due() if due.kind == FIRE]
    missed = store.take(due, 300, spec)
    assert missed is not None and missed.window == "2026-12-03 (Europe/Paris)"
    assert missed.since == datetime(2026, 12, 2, 18, 0, tzinfo=UTC)
    assert "experiments/id/e1" in missed.studio_url  # from the last matching event seen
