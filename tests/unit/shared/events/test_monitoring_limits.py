"""The model monitor's tag is event data: read within caps, in linear time, whatever it holds."""

from __future__ import annotations

import json

from shared.events.monitoring import MAX_LITERAL_CHARS, MAX_ROWS, breached_rows, signal_name

ROW = {"group": "age", "metric_value": 0.41, "metric_name": "JensenShannonDistance", "threshold_value": 0.1}
HEAD = "The signal 'drift' has failed due to one or more features violating metric thresholds. "


def listed(count: int) -> str:
    return HEAD + "[" + ", ".join(repr(json.dumps(ROW | {"group": f"g{n}"})) for n in range(count)) + "]"


def test_the_signal_name_is_found_between_the_first_opening_and_the_last_closing() -> None:
    assert signal_name("The signal 'it's mine' has failed due to x") == "it's mine"
    assert signal_name("The signal '" + "x'" * 100_000) is None  # no closing phrase: linear, and nothing
    assert signal_name("no signal here") is None


def test_a_list_is_read_whole_below_the_cap_and_rows_are_capped() -> None:
    assert len(breached_rows(listed(50))) == 50
    assert len(breached_rows(listed(MAX_ROWS + 500))) == MAX_ROWS


def test_a_list_too_long_to_evaluate_is_read_object_by_object() -> None:
    message = listed(MAX_LITERAL_CHARS // 100)
    assert len(message) > MAX_LITERAL_CHARS  # not given to ast.literal_eval
    rows = breached_rows(message)
    assert len(rows) == min(MAX_ROWS, MAX_LITERAL_CHARS // 100) and rows[0]["group"] == "g0"


def test_crafted_tags_give_no_rows_and_raise_nothing() -> None:
    for message in ("{" * 300_000, "[" * 300_000 + "]" * 300_000, "[" + "{" + "a" * 300_000 + "]", HEAD + "[1, 2"):
        assert breached_rows(message) == []
