"""Paths reach keys that hold dots themselves, as Azure ML names its own tags (`azureml.pipelineid`),
in `when:`, `group.by`, silences' `--when` (one resolver) and in templates."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.events.parse import parse_event
from shared.noise.silences import parse_matcher
from shared.routing import conditions
from shared.routing.conditions import _MISSING, Condition, event_view, resolve
from shared.templates import compile_template, render, template_context
from tests.support.events import load_event

PIPELINE_ID = "c0ffee00-1234-4abc-9def-00000000abcd"
PIPELINE_RUN = parse_event(load_event("eventgrid/run_completed.json"))  # runProperties: {"azureml.pipelineid": ...}


def test_a_condition_reaches_azure_mls_own_tag_keys_as_users_write_them() -> None:
    view = event_view(PIPELINE_RUN)
    assert Condition("data.RunProperties.azureml.pipelineid", "exists", True).holds(view)
    assert Condition("data.runProperties.AzureML.PipelineId", "equals", PIPELINE_ID).holds(view)
    assert Condition("data.RunProperties.azureml.runsource", "equals", "azureml.PipelineRun").holds(view)
    assert not Condition("data.RunProperties.azureml.nothing", "exists", True).holds(view)
    assert not Condition("data.RunProperties.azureml", "exists", True).holds(view)  # no key is `azureml` alone


def test_a_silence_matcher_reaches_them_too() -> None:
    assert parse_matcher("data.RunProperties.azureml.runsource=azureml.PipelineRun").holds(event_view(PIPELINE_RUN))


def test_a_template_reaches_them_as_attributes_and_by_subscript() -> None:
    template = compile_template(
        "{{ event.data.RunProperties.azureml.pipelineid }} {{ event.data.RunProperties['azureml.runsource'] }}"
    )
    assert render(template, template_context(PIPELINE_RUN)) == f"{PIPELINE_ID} azureml.PipelineRun"


def test_longer_keys_first_then_shorter_ones() -> None:
    view = {"data": {"t": {"a.b": {"c": "long"}, "a": {"b": {"c": "short"}, "b.d": "other"}}}}
    assert resolve(view, "data.t.a.b.c") == "long"
    assert resolve(view, "data.t.a.b.d") == "other"  # `a.b` leads nowhere for `d`: back to `a`, then `b.d`


segments = st.lists(st.sampled_from(["azureml", "Run", "tag", "x", "p-1"]), min_size=1, max_size=6)


@settings(max_examples=300, deadline=None)
@given(segments, st.data())
def test_any_grouping_of_a_paths_segments_into_keys_is_reached(parts: list[str], data: st.DataObject) -> None:
    """However the segments were grouped into (dotted) keys, the path finds the value."""
    cuts = sorted(data.draw(st.sets(st.integers(1, len(parts) - 1))) if len(parts) > 1 else set())
    keys = [".".join(parts[a:b]) for a, b in zip([0, *cuts], [*cuts, len(parts)], strict=True)]
    value: Any = "found"
    for key in reversed(keys):
        value = {key: value}
    assert resolve({"data": value}, "data." + ".".join(parts)) == "found"
    assert resolve({"data": value}, "data." + ".".join(parts) + ".more") is _MISSING


def test_a_crafted_payload_costs_at_most_quadratic_lookups(monkeypatch) -> None:
    """Every prefix of the path exists as a key and leads to a dead end: without remembering dead ends the
    search would try every grouping (2^(n-1)); it tries each (mapping, position) once."""
    n = 24
    level: dict[str, Any] = {}
    for size in range(1, n + 1):
        level[".".join(["a"] * size)] = level if size < n else "not this"
    lookups = 0
    real = conditions.get_ci

    def counting(mapping: Any, key: str, default: Any = None) -> Any:
        nonlocal lookups
        lookups += 1
        return real(mapping, key, default)

    monkeypatch.setattr(conditions, "get_ci", counting)
    assert resolve({"data": level}, "data." + ".".join(["a"] * n) + ".b") is _MISSING
    assert lookups <= (n + 1) ** 2
