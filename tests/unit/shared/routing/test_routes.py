"""routes.yaml: matching semantics, and validation that lists every problem with its line."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from shared.events.parse import parse_event
from shared.routing.routes import RoutesError
from shared.worker import load_routes, parse_routes
from tests.support.events import load_event
from tests.support.scripts import run_script

ROOT = Path(__file__).resolve().parents[4]
FAILED = parse_event(load_event("eventgrid/run_status_changed_failed.json"))
LOWER_FAILED = parse_event(load_event("quirks/run_status_lowercase_null_runtype.json"))
MODEL = parse_event(load_event("eventgrid/model_registered.json"))
DEPLOYED = parse_event(load_event("eventgrid/model_deployed.json"))
DRIFT_STRING = parse_event(load_event("quirks/drift_schema_page_subject_string_coefficient.json"))


def one_route(when: str, events: str = "[RunStatusChanged]") -> str:
    return f"routes:\n  - name: r\n    events: {events}\n    when: {when}\n    actions: [log: {{}}]\n"


def matches(when: str, event, events: str = "[RunStatusChanged]") -> bool:
    table = parse_routes(one_route(when, events), "routes.yaml", {})
    return [route.name for route in table.matching(event)] == ["r"]


@pytest.mark.parametrize(
    ("when", "event", "expected"),
    [
        ("{data.RunStatus: Failed}", FAILED, True),
        ("{data.runstatus: FAILED}", LOWER_FAILED, True),  # keys and values ignore case
        ("{data.RunStatus: [Failed, Canceled]}", FAILED, True),
        ("{data.RunStatus: [Completed, Canceled]}", FAILED, False),
        ("{data.RunStatus: {not_in: [Completed]}}", FAILED, True),
        ("{data.ExperimentName: {startswith: CHURN-}}", FAILED, True),
        ("{data.ExperimentName: {startswith: prod-}}", FAILED, False),
        ("{data.RunId: {endswith: _ef56gh78}}", FAILED, True),
        ("{subject: {contains: /runs/}}", FAILED, True),
        ("{data.RunTags.team: {exists: true}}", FAILED, True),
        ("{data.RunTags.owner: {exists: true}}", FAILED, False),
        ("{data.RunTags.owner: {exists: false}}", FAILED, True),
        ("{data.RunTags.owner: {not_in: [x]}}", FAILED, True),  # missing key matches NotIn, as in Event Grid
        ("{data.RunTags.owner: x}", FAILED, False),
        ("{data.RunType: {exists: false}}", LOWER_FAILED, True),  # runType: null counts as absent
        ("{data.RunId: {matches: '^churn_train_\\d+_'}}", FAILED, True),
        ("{eventType: Microsoft.MachineLearningServices.RunStatusChanged}", FAILED, True),
        ("{topic: {endswith: /workspaces/mlw-contoso-prod}}", FAILED, True),
        ("{id: 0b7d4c52-91e3-4f0a-b6a1-77e2c9d8f001}", FAILED, True),
        ("{data.RunStatus: Failed, data.ExperimentName: other}", FAILED, False),  # every condition must hold
    ],
)
def test_run_conditions(when: str, event, expected: bool) -> None:
    assert matches(when, event) is expected


@pytest.mark.parametrize(
    ("when", "event", "expected"),
    [
        ("{data.ModelVersion: {gte: 7}}", MODEL, True),  # sent as the number 7
        ("{data.ModelVersion: {gt: 7}}", MODEL, False),
        ("{data.ModelVersion: '7'}", MODEL, True),  # a string and a number compare as numbers
        ("{data.ModelTags.auc: {gt: 0.9}}", MODEL, True),  # "0.91" in the payload
        ("{data.ModelTags.stage: {lt: 3}}", MODEL, False),  # not a number: no match, no error
    ],
)
def test_numeric_conditions(when: str, event, expected: bool) -> None:
    assert matches(when, event, "[ModelRegistered]") is expected


def test_drift_coefficient_sent_as_string_compares_as_number() -> None:
    assert matches("{data.DriftCoefficient: {gte: 0.8}}", DRIFT_STRING, "[DatasetDriftDetected]")
    assert not matches("{data.DriftCoefficient: {gte: 0.9}}", DRIFT_STRING, "[DatasetDriftDetected]")


def test_event_types_short_or_full_and_disabled_routes() -> None:
    text = """
routes:
  - name: full
    events: [Microsoft.MachineLearningServices.ModelDeployed, modelregistered]
    actions: [log: {}]
  - name: paused
    enabled: false
    events: [ModelDeployed]
    actions: [log: {}]
"""
    table = parse_routes(text, "routes.yaml", {})
    assert [r.name for r in table.matching(DEPLOYED)] == ["full"]
    assert [r.name for r in table.matching(MODEL)] == ["full"]
    assert table.matching(FAILED) == []


def test_settings_are_substituted() -> None:
    text = 'routes:\n  - name: w\n    events: [RunStatusChanged]\n    actions:\n      - webhook: {url: "${HOOK}/x"}\n'
    table = parse_routes(text, "routes.yaml", {"HOOK": "https://hooks.example.com"})
    assert table.routes[0].actions[0].action.url == "https://hooks.example.com/x"


BROKEN = """\
routes:
  - name: failed-runs
    events: [RunStatusChanged, RunExploded]
    colour: blue
    when:
      data.RunStatus: {startswith: F, near: x}
      data.RunId: {matches: "([a-z"}
      runstatus: Failed
      data.ModelVersion: {gt: seven}
    actions:
      - teleport: {}
      - webhook: {url: "${NOT_SET_ANYWHERE}", retry: {attempts: 99}, timeout: soon}
      - log: {level: loud}
  - name: failed-runs
    events: [RunCompleted]
    actions: []
"""


def test_every_problem_is_listed_with_its_line() -> None:
    with pytest.raises(RoutesError) as caught:
        parse_routes(BROKEN, "routes.yaml", {})
    problems = "\n".join(caught.value.problems)
    expected = [
        "routes.yaml:3: route 'failed-runs': unknown event type 'RunExploded'",
        "routes.yaml:4: route 'failed-runs': unknown key 'colour'",
        "routes.yaml:6: route 'failed-runs': data.RunStatus: unknown operator 'near'",
        "routes.yaml:7: route 'failed-runs': data.RunId: bad regular expression",
        "routes.yaml:8: route 'failed-runs': unknown path 'runstatus'",
        "routes.yaml:9: route 'failed-runs': data.ModelVersion: gt needs a number",
        "routes.yaml:11: route 'failed-runs': unknown action kind 'teleport'",
        "routes.yaml:12: route 'failed-runs': actions[1].webhook.url uses ${NOT_SET_ANYWHERE} but the app setting "
        "NOT_SET_ANYWHERE is not set",
        "routes.yaml:12: route 'failed-runs': webhook: retry.attempts must be a whole number from 1 to 10",
        "routes.yaml:12: route 'failed-runs': webhook: timeout: 'soon' is not a duration",
        "routes.yaml:13: route 'failed-runs': log: level 'loud' is not one of",
        "routes.yaml:14: duplicate route name 'failed-runs' (first at line 2)",
        "routes.yaml:16: route 'failed-runs': `actions` is required",
    ]
    for fragment in expected:
        assert fragment in problems, f"missing: {fragment}\n--- got:\n{problems}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("routes:\n  - name: a\n    events: [RunCompleted\n", "routes.yaml:4: YAML syntax error"),
        ("routes:\n  - name: a\n    name: b\n", "routes.yaml:3: YAML syntax error: duplicate key 'name'"),
        ("- name: a\n", "routes.yaml:1: the file must be a mapping with a `routes:` list"),
        ("routes: []\nextra: 1\n", "routes.yaml:2: unknown top-level key 'extra'"),
        ("routes:\n  - events: [RunCompleted]\n    actions: [log]\n", "routes.yaml:2: routes[0]: `name` is required"),
        ("routes:\n  - name: a b\n    events: [RunCompleted]\n    actions: [log]\n", "`name` is required: letters"),
        (
            "routes:\n  - name: off\n    events: [RunCompleted]\n    actions: [log]\n",
            "(YAML read False: quote the name)",
        ),
    ],
)
def test_file_level_problems(text: str, message: str) -> None:
    with pytest.raises(RoutesError) as caught:
        parse_routes(text, "routes.yaml", {})
    assert any(message in problem for problem in caught.value.problems), caught.value.problems


def test_problems_in_a_disabled_route_are_notes_not_errors() -> None:
    text = (
        "routes:\n  - name: later\n    enabled: false\n    events: [RunCompleted]\n"
        '    actions:\n      - webhook: {url: "${NOT_CONFIGURED_YET}"}\n'
    )
    table = parse_routes(text, "routes.yaml", {})
    assert "NOT_CONFIGURED_YET is not set" in table.warnings[0]


def run_validate(*args: str) -> subprocess.CompletedProcess[str]:
    return run_script("validate_routes", *args)


def test_validate_routes_command(tmp_path: Path) -> None:
    ok = run_validate("--routes", str(ROOT / "routes.yaml"))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("OK ") and "routes (" in ok.stdout
    broken = tmp_path / "routes.yaml"
    broken.write_text(BROKEN)
    bad = run_validate("--routes", str(broken))
    assert bad.returncode == 1
    assert f"{broken}:11: route 'failed-runs': unknown action kind 'teleport'" in bad.stderr
    assert "problem(s) in" in bad.stderr


def test_the_shipped_routes_file_loads() -> None:
    table = load_routes(ROOT / "routes.yaml", {})
    assert {r.name for r in table.routes if r.enabled} >= {"failed-runs", "model-registry", "drift"}
