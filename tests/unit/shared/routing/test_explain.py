"""shared/explain.py: why each route takes an event or not, with the first failing condition and the
value the event had, then the gate and the actions."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from scripts.make_event import build_event
from shared.events.parse import parse_event
from shared.routing.conditions import Condition, parse_conditions
from shared.routing.explain import describe_gate, explain, failure, unrouted_reason
from shared.worker import parse_routes

ROUTES = """
routes:
  - name: prod
    events: [RunStatusChanged]
    when:
      data.RunStatus: [Failed, Canceled]
      data.ExperimentName: {startswith: prod-}
    repeat_interval: 1h
    group: {by: [data.ExperimentName], wait: 2m}
    actions: [log: {}]
  - name: paused
    enabled: false
    events: [RunStatusChanged]
    actions: [log: {}]
  - name: tagged
    events: [RunStatusChanged]
    when:
      data.RunTags.owner: {exists: true}
    actions: [log: {}]
  - name: models
    events: [ModelRegistered]
    actions: [log: {}]
"""


def event(**values: object):
    return parse_event(build_event("RunStatusChanged", values))


def lines(**values: object) -> dict[str, list[str]]:
    table = parse_routes(ROUTES, "routes.yaml", {})
    return {item.route: item.lines() for item in explain(table, event(**values))}


def test_a_miss_names_the_first_failing_condition_with_the_events_value() -> None:
    found = lines(**{"data.RunStatus": "Failed", "data.ExperimentName": "dev-churn"})
    assert found["prod"] == ["prod: not matched: data.ExperimentName: 'dev-churn' does not start with 'prod-'"]
    assert found["models"] == ["models: not matched: takes ModelRegistered, not RunStatusChanged"]
    assert found["tagged"] == ["tagged: not matched: data.RunTags.owner: missing, the route wants it present"]
    assert found["paused"] == ["paused: not matched: disabled (`enabled: false`); its conditions hold"]


def test_a_match_says_what_the_gate_would_do_and_which_actions_run() -> None:
    found = lines(**{"data.RunStatus": "Canceled", "data.ExperimentName": "prod-churn"})
    assert found["prod"] == [
        "prod: matched",
        "  gate: repeat_interval 1h: skipped if the event's subject notified within it",
        "  gate: grouped by data.ExperimentName (data.ExperimentName='prod-churn'): held for a digest sent 2m "
        "after the group's first event",
        "  action log#0 -> log",
    ]


def test_an_active_silence_is_part_of_the_gate_decision() -> None:
    table = parse_routes(ROUTES, "routes.yaml", {})
    view = {"data": {"ExperimentName": "prod-a"}}
    gate = describe_gate(table.route("models"), view, lambda route, _: "deploy freeze (silence s1)")
    assert gate == ("silenced now: deploy freeze (silence s1) (actions skipped)",)


def test_values_shown_are_bounded() -> None:
    reason = failure(Condition("data.X", "equals", "a"), {"data": {"X": "y" * 10_000}})
    assert reason is not None and len(reason) < 200


@given(
    actual=st.one_of(st.text(max_size=20), st.integers(), st.floats(allow_nan=False), st.none(), st.booleans()),
    op=st.sampled_from(["equals", "startswith", "endswith", "contains", "gt", "lte", "in", "not_in", "exists"]),
    operand=st.one_of(st.text(min_size=1, max_size=5), st.integers(-5, 5)),
)
def test_a_reason_is_given_exactly_when_the_condition_fails(actual: object, op: str, operand: object) -> None:
    spec = {op: True if op == "exists" else [operand] if op in ("in", "not_in") else operand}
    conditions, problems = parse_conditions("data.Field", json.loads(json.dumps(spec)), 1)
    if problems:  # e.g. gt with a text operand: refused at load, never evaluated
        return
    (condition,) = conditions
    view = {"data": {"Field": actual}}
    reason = failure(condition, view)
    assert (reason is None) == condition.holds(view)
    if reason is not None:
        assert reason.startswith("data.Field: ")


def test_an_unrouted_events_report_says_why_each_route_for_its_type_did_not_take_it() -> None:
    table = parse_routes(ROUTES, "routes.yaml", {})
    reason = unrouted_reason(table, event(**{"data.RunStatus": "Running"}))
    assert reason == (
        "no route matches: prod: data.RunStatus: 'Running' is not one of Failed, Canceled; "
        "paused: disabled (`enabled: false`); its conditions hold; "
        "tagged: data.RunTags.owner: missing, the route wants it present"
    )
    drift = parse_event(build_event("DatasetDriftDetected"))
    assert unrouted_reason(table, drift) == "no route takes DatasetDriftDetected events"
    long = unrouted_reason(table, event(**{"data.RunStatus": "x" * 5000}))
    assert len(long) <= 300 and "xxx…" in long  # each value shown is bounded, and the whole reason
