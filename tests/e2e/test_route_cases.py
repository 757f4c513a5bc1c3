"""scripts/test_routes.py: case files that say which routes take an event and what they send; the
shipped routes.yaml is tested by the shipped routes.tests.yaml here, and so in CI."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts import test_routes
from shared.settings import APP_ROOT

ROUTES = """
routes:
  - name: prod-failures
    events: [RunStatusChanged]
    when:
      data.RunStatus: Failed
      data.ExperimentName: {startswith: prod-}
    actions:
      - log: {}
      - teams: {url: "${TEAMS_URL}"}
"""


def run(tmp_path: Path, cases: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    routes = tmp_path / "routes.yaml"
    routes.write_text(ROUTES)
    case_file = tmp_path / "cases.yaml"
    case_file.write_text(cases)
    status = test_routes.main(["--routes", str(routes), str(case_file)])
    captured = capsys.readouterr()
    return status, captured.out + captured.err


def test_the_shipped_routes_pass_their_shipped_cases(capsys: pytest.CaptureFixture[str]) -> None:
    status = test_routes.main(["--routes", str(APP_ROOT / "routes.yaml"), str(APP_ROOT / "routes.tests.yaml")])
    assert status == 0, capsys.readouterr().out


def test_passing_cases_with_routes_actions_and_rendered_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out = run(tmp_path, """
settings: {TEAMS_URL: "https://teams.example.com/hook"}
cases:
  - name: prod failure
    event: {type: RunStatusChanged, set: {data.RunStatus: Failed, data.ExperimentName: prod-churn}}
    routes: [prod-failures]
    actions: {prod-failures: [log, teams]}
    renders: {prod-failures/teams: ["prod-churn", "Open in Azure ML studio"]}
""", capsys)  # fmt: skip
    assert status == 0, out
    assert "1 passed, 0 failed" in out


def test_a_route_that_does_not_match_prints_the_failing_condition_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out = run(tmp_path, """
settings: {TEAMS_URL: "https://teams.example.com/hook"}
cases:
  - name: dev failure expected to alert
    event: {type: RunStatusChanged, set: {data.RunStatus: Failed, data.ExperimentName: dev-churn}}
    routes: [prod-failures]
""", capsys)  # fmt: skip
    assert status == 1
    assert "FAIL" in out and "routes: expected ['prod-failures'], got []" in out
    assert "prod-failures: not matched: data.ExperimentName: 'dev-churn' does not start with 'prod-'" in out


def test_wrong_actions_and_missing_text_are_differences(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out = run(tmp_path, """
settings: {TEAMS_URL: "https://teams.example.com/hook"}
cases:
  - name: expects an email and a phrase the card does not have
    event: {type: RunStatusChanged, set: {data.RunStatus: Failed, data.ExperimentName: prod-x}}
    routes: [prod-failures]
    actions: {prod-failures: [log, email]}
    renders: {prod-failures/teams: ["prod-x", "Call the on-call engineer"]}
""", capsys)  # fmt: skip
    assert status == 1
    assert "actions of prod-failures: expected ['log', 'email'], got ['log', 'teams']" in out
    assert "renders prod-failures/teams#1: does not contain ['Call the on-call engineer']" in out


@pytest.mark.parametrize(
    ("cases", "problem"),
    [
        ("cases: {}", "a mapping with a `cases:` list"),
        ("cases: [{name: x, event: {type: Nope}, routes: []}]", "unknown event type 'Nope'"),
        ("cases: [{name: x, event: {type: RunStatusChanged, set: {data.Nope: 1}}, routes: []}]", "no such field"),
        ("cases: [{name: x, event: missing.json, routes: []}]", "event file missing.json"),
        ("cases: [{name: x, event: {type: RunCompleted}, routes: [], expect: 1}]", "unknown key(s) expect"),
        ("cases: [{name: x, event: {type: RunCompleted}, routes: [no-such-route]}]", "no route named 'no-such-route'"),
    ],
)
def test_a_case_file_that_cannot_be_used_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cases: str, problem: str
) -> None:
    status, out = run(tmp_path, "settings: {TEAMS_URL: 'https://t.example.com'}\n" + cases, capsys)
    assert problem in out
    assert status == (1 if "no route named" in problem else 2)


def test_the_case_file_shown_in_the_docs_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page = (APP_ROOT / "docs" / "explain-preview.md").read_text(encoding="utf-8")
    (sample,) = [block.split("```", 1)[0] for block in page.split("```yaml\n")[1:] if "# routes.tests.yaml" in block]
    cases = tmp_path / "routes.tests.yaml"
    cases.write_text(sample)
    (tmp_path / "tests").symlink_to(APP_ROOT / "tests")  # event files are relative to the case file
    status = test_routes.main(["--routes", str(APP_ROOT / "routes.yaml"), str(cases)])
    assert status == 0, capsys.readouterr().out
