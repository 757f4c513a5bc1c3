"""`when:` operators at their edges: boundaries of the numeric comparisons, number-versus-number
equality, single values where lists are usual, list-valued fields, and the operand checks at load."""

from __future__ import annotations

from typing import Any

import pytest

from shared.routing.conditions import Condition, parse_conditions


def holds(op: str, operand: Any, actual: Any) -> bool:
    (condition,), problems = parse_conditions("data.Value", {op: operand}, 1)
    assert problems == []
    view = {"data": {} if actual is _ABSENT else {"Value": actual}}
    return condition.holds(view)


_ABSENT = object()


@pytest.mark.parametrize(
    ("op", "limit", "below", "at", "above"),
    [("gt", 5, False, False, True), ("gte", 5, False, True, True), ("lt", 5, True, False, False),
     ("lte", 5, True, True, False)],
)  # fmt: skip
def test_numeric_operators_at_their_boundary(op: str, limit: float, below: bool, at: bool, above: bool) -> None:
    assert [holds(op, limit, value) for value in (4.999, 5, 5.001)] == [below, at, above]
    assert [holds(op, str(limit), str(value)) for value in (4.999, 5, 5.001)] == [below, at, above]


@pytest.mark.parametrize("op", ["gt", "gte", "lt", "lte"])
def test_numeric_operators_never_hold_for_what_is_not_a_number(op: str) -> None:
    for actual in ("high", True, None, {"x": 1}, [5], _ABSENT):
        assert holds(op, 5, actual) is False, actual


@pytest.mark.parametrize(
    ("expected", "actual", "equal"),
    [(7, 7.0, True), (7.0, 7, True), ("7", 7, True), (0.9, "0.90", True), ("0.90", 0.9, True), (7, 7.5, False),
     ("Failed", "failed", True), ("1e3", 1000, True), (True, "true", True), (True, 1, False), (False, 0, False)],
)  # fmt: skip
def test_equality_compares_numbers_as_numbers_and_text_without_case(expected: Any, actual: Any, equal: bool) -> None:
    assert holds("equals", expected, actual) is equal


def test_in_and_not_in_take_a_single_value_as_a_list_of_one() -> None:
    assert holds("in", "Failed", "failed") and not holds("in", "Failed", "Completed")
    assert holds("not_in", "Failed", "Completed") and not holds("not_in", "Failed", "FAILED")
    assert holds("not_in", "Failed", _ABSENT)  # as Event Grid's NotIn: a missing key matches
    assert not holds("in", "Failed", _ABSENT)


def test_list_valued_fields_hold_when_an_item_does() -> None:
    tags = ["alpha", "Beta", 3]
    assert holds("equals", "beta", tags) and not holds("equals", "gamma", tags)
    assert holds("in", ["x", 3.0], tags)
    assert holds("contains", "lph", tags) and holds("startswith", "be", tags) and holds("endswith", "ta", tags)
    assert holds("matches", "^al", tags) and not holds("matches", "^z", tags)
    assert not holds("gt", 1, [5, 6])  # numbers are compared one to one, never against a list


@pytest.mark.parametrize(("operand", "actual", "result"), [(True, 1, True), (True, _ABSENT, False),
                                                          (False, _ABSENT, True), (False, "x", False)])  # fmt: skip
def test_exists(operand: bool, actual: Any, result: bool) -> None:
    assert holds("exists", operand, actual) is result


@pytest.mark.parametrize(
    ("spec", "problem"),
    [({"exists": "yes"}, "exists takes true or false, got 'yes'"), ({"exists": 1}, "exists takes true or false"),
     ({"gt": True}, "gt needs a number, got True"), ({"lte": "many"}, "lte needs a number"),
     ({"gte": [1]}, "gte needs a number"), ({"equals": [1, 2]}, "equals takes a single value, got list"),
     ({"contains": {"a": 1}}, "contains takes a single value, got LineDict"),
     ({"startswith": ["a"]}, "startswith takes a single value, got list"), ({"between": 1}, "unknown operator"),
     ({"matches": "(a)\\1"}, "regular expression '(a)\\\\1' cannot be used"), ({"matches": "["}, "cannot be used")],
)  # fmt: skip
def test_operands_are_checked_when_routes_load(spec: dict[str, Any], problem: str) -> None:
    from shared.routing.yamlsource import LineDict

    spec = {op: (LineDict(value) if isinstance(value, dict) else value) for op, value in spec.items()}
    conditions, problems = parse_conditions("data.Value", spec, 3)
    assert conditions == []
    (found,) = problems
    assert found.startswith("data.Value: ") and problem in found, found


def test_a_checked_condition_keeps_its_line_and_a_numeric_operand_as_a_number() -> None:
    (condition,), _ = parse_conditions("data.Value", {"gte": "0.5"}, 12)
    assert condition == Condition("data.Value", "gte", 0.5, 12)
    (implicit,), _ = parse_conditions("data.Value", ["a", "b"], 13)
    assert implicit == Condition("data.Value", "in", ["a", "b"], 13)
    (plain,), _ = parse_conditions("data.Value", "a", 14)
    assert plain == Condition("data.Value", "equals", "a", 14)


@pytest.mark.parametrize(
    ("path", "problem"),
    [("status", "unknown path 'status': it must start with one of id, eventType, subject, topic, data.<Field>, "
                "or (with `enrich: true`) run.<field>, model.<field>"),
     ("data", "path 'data' must name a field, e.g. data.RunStatus"),
     ("DATA", "path 'DATA' must name a field, e.g. data.RunStatus"),
     ("run", "path 'run' must name a field, e.g. run.metrics.accuracy"),
     ("Model", "path 'Model' must name a field, e.g. model.description")],
)  # fmt: skip
def test_a_path_problem_says_what_a_path_may_be(path: str, problem: str) -> None:
    assert parse_conditions(path, "x", 1) == ([], [problem])


def test_every_root_of_the_event_view_is_reachable() -> None:
    from shared.events.parse import parse_event
    from shared.routing.conditions import event_view
    from tests.support.events import load_event

    event = parse_event(load_event("eventgrid/run_status_changed_failed.json") | {"dataVersion": "2"})
    view = event_view(event)
    for path, value in (("id", event.id), ("eventType", event.event_type), ("subject", event.subject),
                        ("topic", event.topic), ("dataVersion", "2"), ("Data.RunStatus", "Failed")):  # fmt: skip
        (condition,), _ = parse_conditions(path, {"equals": value}, 1)
        assert condition.holds(view), path


def test_a_problem_in_one_operator_leaves_the_others_checked() -> None:
    spec = {"between": 1, "gt": "many", "matches": "(a)\\1", "exists": "yes", "equals": [1], "contains": "x"}
    conditions, problems = parse_conditions("data.Value", spec, 4)
    assert [condition.op for condition in conditions] == ["contains"]
    assert len(problems) == 5
    assert problems[0] == (
        "data.Value: unknown operator 'between' (use one of equals, in, not_in, startswith, endswith, contains, "
        "matches, gt, gte, lt, lte, exists)"
    )
