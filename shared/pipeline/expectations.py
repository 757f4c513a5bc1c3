"""What events and the timer do to expectations; the store keeps them, the engine delivers.

- An event that matches a follow-up route (its `events`/`when`) opens an expectation; one that
  matches the route's `expect.event` closes the expectation with the same `same:` values (and, when
  it came after the deadline and the route asks for it, yields a "resolved late" notice to deliver).
- An event that matches a recurring route's `expect.event` counts for its window.
- The `check_expectations` timer arms the next window of each recurring route, then delivers every
  due expectation that nothing closed, through the route's actions (gate and ledger included: the
  ledger key is the expectation, so retries, concurrent timers and restarts act once).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from shared.noise.expectation_rows import COLLECT
from shared.noise.expectations import ExpectationStore, Step
from shared.routing.expect import FollowUp, Recurring

if TYPE_CHECKING:
    from shared.events.expectation import ExpectationMissed
    from shared.events.model import AmlEvent

CHECK_FUNCTION = "check_expectations"


OPEN, FOLLOW_UP, COUNT = "open", "follow_up", "count"


def concerned(routes: Iterable[Any], event: AmlEvent) -> Iterator[tuple[Any, str]]:
    """Each enabled route with `expect:` that this event concerns, with what it does there: opens a
    follow-up expectation, follows one up, or counts for a recurring one."""
    for route in routes:
        spec = getattr(route, "expect", None)
        if spec is None or not route.enabled:
            continue
        if isinstance(spec, FollowUp) and route.matches(event):
            yield route, OPEN
        elif spec.event.matches(event):
            yield route, FOLLOW_UP if isinstance(spec, FollowUp) else COUNT


def on_event(store: ExpectationStore, routes: Iterable[Any], event: AmlEvent) -> list[Step]:
    """Open, count or close the expectations this event concerns. Raises LedgerUnavailable when storage
    fails (Event Grid redelivers)."""
    steps = []
    for route, does in concerned(routes, event):
        change = {OPEN: store.open, FOLLOW_UP: store.follow_up, COUNT: store.record}[does]
        steps.append(change(route.name, route.expect, event))
    return steps


def planned(routes: Iterable[Any], event: AmlEvent) -> list[tuple[str, str]]:
    """(route, what would happen) for a dry run, which reads and writes no state."""
    words = {OPEN: "would open", FOLLOW_UP: "would close (if open)", COUNT: "would count for"}
    return [(route.name, f"{words[does]} an expectation: {route.expect.describe()}") for route, does in
            concerned(routes, event)]  # fmt: skip


def check_due(
    store: ExpectationStore,
    routes: Any,
    deliver: Callable[[ExpectationMissed, Any], list[Any]],
    lease_seconds: float,
) -> list[Any]:
    """The timer: arm recurring windows, then fire what is due; the reports of the actions run."""
    for route in routes.routes:
        if route.enabled and isinstance(route.expect, Recurring):
            store.arm(route.name, route.expect)
    reports: list[Any] = []
    for due in store.due():
        if due.kind == COLLECT:
            store.collect(due)
            continue
        route = routes.route(due.route)
        if route is None or not route.enabled or route.expect is None:
            store.drop(due)
            continue
        missed = store.take(due, lease_seconds, route.expect)
        if missed is None:
            continue
        delivered = deliver(missed, route)
        store.fired(due, settled=all(report.settled for report in delivered))
        reports += delivered
    return reports
