"""The commands a new user tries first say what is going on in a line, not a traceback: no host, no
dead letters yet, settings from local.settings.json, sample events, help, and why a route did not match."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from scripts import azurite as azurite_tool
from scripts import make_event, replay, send_event, silence, validate_routes
from shared.events.parse import parse_event

ROOT = Path(__file__).resolve().parents[2]
WEBHOOK_ROUTES = """
routes:
  - name: hook
    events: [RunStatusChanged]
    actions:
      - webhook: {url: "${HOOK_URL}"}
"""


def test_send_event_without_a_host_prints_a_one_line_hint(capsys: pytest.CaptureFixture[str]) -> None:
    nobody = f"http://127.0.0.1:{azurite_tool._free_port()}"
    status = send_event.main(["--host", nobody, str(ROOT / "tests/events/eventgrid")])
    err = capsys.readouterr().err
    assert status == 1
    assert err.count("\n") == 1 and "no Functions host answers" in err and "func start" in err


def test_azurite_help_prints_help_and_starts_nothing() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "azurite.py"), "--help"],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0
    assert result.stdout.startswith("usage: azurite.py") and "AzureWebJobsStorage" in result.stdout


def test_validation_reads_local_settings_values_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text(WEBHOOK_ROUTES)
    local = tmp_path / "local.settings.json"
    local.write_text(json.dumps({"IsEncrypted": False, "Values": {"HOOK_URL": "https://hooks.example.com/a"}}))
    monkeypatch.delenv("HOOK_URL", raising=False)
    assert validate_routes.main(["--routes", str(routes), "--settings", str(tmp_path / "missing.json")]) == 1
    assert validate_routes.main(["--routes", str(routes), "--settings", str(local)]) == 0
    out = capsys.readouterr().out
    assert "settings: the environment, then local.settings.json Values (1; the environment wins)" in out
    monkeypatch.setenv("HOOK_URL", "not-a-url")
    assert validate_routes.main(["--routes", str(routes), "--settings", str(local)]) == 1
    assert "webhook: url must be an absolute http(s) URL" in capsys.readouterr().err


def test_validation_says_when_it_reads_only_the_environment(tmp_path: Path) -> None:
    _, source = validate_routes.settings_environ(None, tmp_path / "local.settings.json")
    assert source == "the environment only (no local.settings.json)"
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ValueError, match=r"broken\.json: cannot read its Values"):
        validate_routes.settings_environ(tmp_path / "broken.json")


def test_make_event_writes_a_valid_event_with_the_fields_set(tmp_path: Path) -> None:
    out = tmp_path / "e.json"
    fields = ["data.RunStatus=failed", "data.ExperimentName=prod-churn", "data.RunTags.azureml.pipelineid=p-1"]
    status = make_event.main(["RunStatusChanged", *fields, "--schema", "cloudevents", "-o", str(out)])
    assert status == 0
    raw = json.loads(out.read_text())
    event = parse_event(raw)
    assert raw["specversion"] == "1.0" and event.run_status == "Failed"
    assert event.experiment_name == "prod-churn" and event.run_tags["azureml.pipelineid"] == "p-1"


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["Drift"], "unknown event type 'Drift'"),
        (["RunStatusChanged", "data.RunStatsu=Failed"], "a RunStatusChanged event has no such field"),
        (["ModelRegistered", "data.ModelName=null"], "would be rejected: data.ModelName"),
        (["RunCompleted", "nonsense"], "write PATH=VALUE"),
    ],
)
def test_make_event_refuses_what_would_not_be_a_valid_event(
    args: list[str], problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert make_event.main(args) == 2
    assert problem in capsys.readouterr().err


def test_replay_explain_names_the_failing_condition(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text("""
routes:
  - name: prod-failures
    events: [RunStatusChanged]
    when: {data.ExperimentName: {startswith: prod-}}
    actions: [log: {}]
  - name: models
    events: [ModelRegistered]
    actions: [log: {}]
""")
    event = tmp_path / "dev.json"
    event.write_text(json.dumps(make_event.build_event("RunStatusChanged", {"data.ExperimentName": "dev-churn"})))
    monkeypatch.delenv("ROUTES_FILE", raising=False)
    assert replay.main(["--dry-run", "--explain", "--routes", str(routes), str(event)]) == 0
    out = capsys.readouterr().out
    assert "prod-failures: not matched: data.ExperimentName: 'dev-churn' does not start with 'prod-'" in out
    assert "not for RunStatusChanged events: models" in out
    assert "=> no route takes it: nothing would be sent" in out


def test_a_silence_when_path_no_event_has_is_warned_about(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text(WEBHOOK_ROUTES.replace("${HOOK_URL}", "https://hooks.example.com/a"))
    assert silence._unknown_route("hook", routes, ["data.ExperimentNme=x", "data.RunStatus=Failed"]) is None
    err = capsys.readouterr().err
    assert err.count("warning:") == 1
    assert "warning: --when data.ExperimentNme: RunStatusChanged events have no such field" in err
    assert silence._unknown_route("nope", routes, []) is not None
