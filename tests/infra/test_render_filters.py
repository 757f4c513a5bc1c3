"""scripts/render_filters.py: filters are exact (never drop an event some enabled route wants),
push down what they can, and stay within Event Grid's limits."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scripts import render_filters
from scripts.render_filters import render, subscription_name
from shared.events.arm import ML_RESOURCES
from shared.routing.conditions import Condition

RUN_COMPLETED = "Microsoft.MachineLearningServices.RunCompleted"
RUN_STATUS = "Microsoft.MachineLearningServices.RunStatusChanged"
MODEL_REGISTERED = "Microsoft.MachineLearningServices.ModelRegistered"
MODEL_DEPLOYED = "Microsoft.MachineLearningServices.ModelDeployed"
DRIFT = "Microsoft.MachineLearningServices.DatasetDriftDetected"

FUNCTIONS = render_filters.load_function_event_types()


@dataclass(frozen=True)
class FakeRoute:
    """The part of shared.routing.routes.Route that render_filters reads."""

    name: str
    event_types: tuple[str, ...]
    conditions: tuple[Condition, ...] = ()
    enabled: bool = True
    actions: tuple[Any, ...] = field(default=())


def route(*event_types: str, when: dict[str, tuple[str, Any]] | None = None, enabled: bool = True) -> FakeRoute:
    conditions = tuple(Condition(path, op, value) for path, (op, value) in (when or {}).items())
    return FakeRoute("r", tuple(event_types), conditions, enabled)


def test_catalog_is_the_one_the_app_uses() -> None:
    assert set(FUNCTIONS) == {"run_events", "model_registered", "model_deployed", "drift_detected",
                              "data_events", "policy_events", "resource_events"}  # fmt: skip


def test_drops_event_types_no_enabled_route_takes() -> None:
    rendered = render([route(RUN_STATUS)], FUNCTIONS)
    assert rendered["run_events"]["includedEventTypes"] == [RUN_STATUS]


def test_function_no_enabled_route_wants_is_not_subscribed() -> None:
    rendered = render([route(RUN_STATUS), route(MODEL_DEPLOYED, enabled=False)], FUNCTIONS)
    assert rendered["model_deployed"] == {"subscribe": False}
    assert rendered["model_registered"] == {"subscribe": False}
    assert rendered["run_events"]["subscribe"] is True


def test_every_function_appears_in_the_output() -> None:
    assert list(render([], FUNCTIONS)) == list(FUNCTIONS)


def test_single_route_subject_condition_is_pushed_down() -> None:
    rendered = render([route(MODEL_REGISTERED, when={"subject": ("startswith", "models/churn:")})], FUNCTIONS)
    assert rendered["model_registered"]["advancedFilters"] == [
        {"operatorType": "StringBeginsWith", "key": "subject", "values": ["models/churn:"]}
    ]


def test_path_root_case_does_not_matter_as_in_the_app() -> None:
    rendered = render([route(MODEL_REGISTERED, when={"Subject": ("endswith", ":1")})], FUNCTIONS)
    assert rendered["model_registered"]["advancedFilters"][0]["operatorType"] == "StringEndsWith"


def test_condition_missing_from_one_route_is_not_pushed() -> None:
    routes = [route(RUN_COMPLETED, when={"subject": ("contains", "/runs/nightly")}), route(RUN_STATUS)]
    assert render(routes, FUNCTIONS)["run_events"]["advancedFilters"] == []


def test_same_operator_kind_across_routes_is_or_ed() -> None:
    routes = [
        route(MODEL_REGISTERED, when={"subject": ("equals", "models/a:1")}),
        route(MODEL_REGISTERED, when={"subject": ("in", ["models/b:2", "MODELS/A:1"])}),
    ]
    assert render(routes, FUNCTIONS)["model_registered"]["advancedFilters"] == [
        {"operatorType": "StringIn", "key": "subject", "values": ["models/a:1", "models/b:2"]}
    ]


def test_not_in_keeps_only_values_every_route_excludes() -> None:
    routes = [
        route(MODEL_REGISTERED, when={"subject": ("not_in", ["models/x:1", "models/y:1"])}),
        route(MODEL_REGISTERED, when={"subject": ("not_in", ["models/y:1"])}),
    ]
    assert render(routes, FUNCTIONS)["model_registered"]["advancedFilters"] == [
        {"operatorType": "StringNotIn", "key": "subject", "values": ["models/y:1"]}
    ]


@pytest.mark.parametrize(
    ("path", "op", "value"),
    [
        ("data.RunStatus", "equals", "Failed"),  # data.* key casing is not guaranteed
        ("data.runStatus", "in", ["Failed"]),
        ("subject", "matches", "^models/"),  # no regex in Event Grid
        ("subject", "equals", "5"),  # the app compares numeric strings as numbers
        ("subject", "startswith", "modèles/"),  # the app casefolds Unicode
        ("subject", "in", []),
        ("subject", "exists", True),
        ("eventType", "equals", RUN_STATUS),
    ],
)
def test_inexact_conditions_are_not_pushed(path: str, op: str, value: Any) -> None:
    rendered = render([route(RUN_STATUS, MODEL_REGISTERED, when={path: (op, value)})], FUNCTIONS)
    assert rendered["run_events"]["advancedFilters"] == []
    assert rendered["model_registered"]["advancedFilters"] == []


def test_limits_drop_whole_filters_until_event_grid_accepts_them() -> None:
    too_many_values = [{"operatorType": "StringIn", "key": "subject", "values": [f"v{i}" for i in range(26)]}]
    assert render_filters._within_limits(too_many_values) == []

    many_filters = [{"operatorType": "StringContains", "key": "subject", "values": [f"v{i}"]} for i in range(30)]
    kept = render_filters._within_limits(many_filters)
    assert len(kept) == render_filters.MAX_ADVANCED_FILTERS

    long_value = [{"operatorType": "StringIn", "key": "subject", "values": ["x" * 513]}]
    assert render_filters._within_limits(long_value) == []


def test_too_many_values_from_routes_means_no_filter() -> None:
    routes = [route(MODEL_REGISTERED, when={"subject": ("in", [f"models/m{i}:1" for i in range(30)])})]
    assert render(routes, FUNCTIONS)["model_registered"]["advancedFilters"] == []


def test_subscription_name_rule_matches_bicep() -> None:
    assert subscription_name("func-abc", "run_events") == "func-abc-run-events"
    assert len(subscription_name("f" * 70, "run_events")) == 64


# ---- nothing lost: a property over random routes and events ----------------------------------------

SUBJECTS = ["models/churn:7", "models/churn-v2:1", "endpoints/scoring", "experiments/e1/runs/nightly_1", "MODELS/x:2"]
OPERANDS = ["models/", "churn", ":7", "endpoints/scoring", "MODELS/CHURN:7", "nightly", "x", "5", "runs/"]
ALL_TYPES = [t for types in FUNCTIONS.values() for t in types]

conditions = st.builds(
    Condition,
    path=st.sampled_from(["subject", "Subject", "data.RunStatus"]),
    op=st.sampled_from(["equals", "startswith", "endswith", "contains", "in", "not_in", "matches"]),
    value=st.one_of(st.sampled_from(OPERANDS), st.lists(st.sampled_from(OPERANDS), min_size=1, max_size=3)),
)
routes_strategy = st.lists(
    st.builds(
        FakeRoute,
        name=st.just("r"),
        event_types=st.lists(st.sampled_from(ALL_TYPES), min_size=1, max_size=3, unique=True).map(tuple),
        conditions=st.lists(conditions, max_size=3).map(tuple),
        enabled=st.booleans(),
    ),
    max_size=4,
)
events = st.tuples(st.sampled_from(ALL_TYPES), st.sampled_from(SUBJECTS), st.sampled_from(["Failed", "Running"]))


def _well_formed(condition: Condition) -> bool:
    list_op = condition.op in ("in", "not_in")
    return list_op == isinstance(condition.value, list)


def app_takes(routes: list[FakeRoute], event_type: str, subject: str, status: str) -> bool:
    view = {"eventType": event_type, "subject": subject, "data": {"runStatus": status}}
    return any(r.enabled and event_type in r.event_types and all(c.holds(view) for c in r.conditions) for r in routes)


def event_grid_delivers(entry: dict[str, Any], function_types: list[str], event_type: str, subject: str) -> bool:
    """Event Grid's side: included types, then every advanced filter (values OR-ed, filters AND-ed)."""
    if not entry["subscribe"]:
        return False
    included = entry.get("includedEventTypes", function_types)
    if event_type.lower() not in {t.lower() for t in included}:
        return False
    text = subject.lower()
    for f in entry.get("advancedFilters", []):
        values = [v.lower() for v in f["values"]]
        matched = {
            "StringIn": text in values,
            "StringNotIn": text not in values,
            "StringBeginsWith": any(text.startswith(v) for v in values),
            "StringEndsWith": any(text.endswith(v) for v in values),
            "StringContains": any(v in text for v in values),
        }[f["operatorType"]]
        if not matched:
            return False
    return True


@settings(max_examples=400, deadline=None)
@given(routes=routes_strategy, event=events)
def test_no_event_a_route_wants_is_filtered_out(routes: list[FakeRoute], event: tuple[str, str, str]) -> None:
    routes = [r for r in routes if all(_well_formed(c) for c in r.conditions)]
    event_type, subject, status = event
    rendered = render(routes, FUNCTIONS)
    function = next(name for name, types in FUNCTIONS.items() if event_type in types)
    if app_takes(routes, event_type, subject, status):
        assert event_grid_delivers(rendered[function], FUNCTIONS[function], event_type, subject)


# ---- the command line --------------------------------------------------------------------------------


def test_cli_renders_the_repository_routes_with_the_app_loader(tmp_path: Path) -> None:
    out = tmp_path / "filters.json"
    assert render_filters.main(["--out", str(out)]) == 0
    rendered = json.loads(out.read_text())
    assert list(rendered) == list(FUNCTIONS)
    for name, entry in rendered.items():
        if entry["subscribe"]:
            assert set(entry["includedEventTypes"]) <= set(FUNCTIONS[name])


def test_cli_without_routes_file_subscribes_everything(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert render_filters.main(["--routes", str(tmp_path / "missing.yaml")]) == 0
    rendered = json.loads(capsys.readouterr().out)
    assert rendered == {name: {"subscribe": True} for name in FUNCTIONS}


def test_the_new_sources_subscriptions_get_the_routes_filters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Blob routes push their container down; policy and resource routes their default (Azure ML resources)."""
    routes_file = tmp_path / "routes.yaml"
    routes_file.write_text("""routes:
  - name: uploads
    events: [BlobCreated]
    when: {subject: {startswith: /blobServices/default/containers/training-data/blobs/}}
    actions: [log]
  - name: compliance
    events: [PolicyStateChanged]
    actions: [log]
  - name: failed-deployments
    events: [ResourceWriteFailure, ResourceWriteCancel]
    actions: [log]
""")
    assert render_filters.main(["--routes", str(routes_file)]) == 0
    rendered = json.loads(capsys.readouterr().out)
    ml = {
        "operatorType": "StringContains",
        "key": "subject",
        "values": [ML_RESOURCES],
    }
    assert rendered["data_events"] == {
        "subscribe": True,
        "includedEventTypes": ["Microsoft.Storage.BlobCreated"],
        "advancedFilters": [{"operatorType": "StringBeginsWith", "key": "subject",
                             "values": ["/blobServices/default/containers/training-data/blobs/"]}],
    }  # fmt: skip
    assert rendered["policy_events"] == {
        "subscribe": True, "includedEventTypes": ["Microsoft.PolicyInsights.PolicyStateChanged"],
        "advancedFilters": [ml],
    }  # fmt: skip
    assert rendered["resource_events"] == {
        "subscribe": True,
        "includedEventTypes": ["Microsoft.Resources.ResourceWriteFailure", "Microsoft.Resources.ResourceWriteCancel"],
        "advancedFilters": [ml],
    }


def test_cli_routes_that_do_not_load_mean_no_filtering(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    routes_file = tmp_path / "routes.yaml"
    routes_file.write_text("routes:\n  - name: bad\n    events: [NoSuchEvent]\n    actions: [log]\n")
    assert render_filters.main(["--routes", str(routes_file)]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {name: {"subscribe": True} for name in FUNCTIONS}
    assert "not filtering" in captured.err
