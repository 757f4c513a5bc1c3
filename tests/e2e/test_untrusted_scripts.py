"""The command lines with untrusted data and broken configuration: escape sequences from event data are
shown, not interpreted; a malformed URL is a listed problem, not a traceback."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from tests.support.events import load_event
from tests.support.scripts import replay, run_script


def test_replay_shows_escape_sequences_from_event_data_instead_of_sending_them(tmp_path: Path) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text("routes:\n  - name: log\n    events: [RunStatusChanged]\n    actions:\n      - log: {}\n")
    event = load_event("eventgrid/run_status_changed_failed.json")
    event["id"] = "\x1b]0;owned\x07\x1b[2J\u202e"
    event["data"]["experimentName"] = "\x1b[31mred\x1b[0m"
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    result = replay("--dry-run", "--routes", str(routes), str(path), env={"PATH": ""})
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout and "\u202e" not in result.stdout and "\x07" not in result.stdout
    assert "\\x1b]0;owned" in result.stdout


def test_validate_routes_lists_malformed_urls_with_their_lines(tmp_path: Path) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text(
        "routes:\n  - name: a\n    events: [RunStatusChanged]\n    actions:\n"
        '      - webhook: {url: "http://[::1"}\n'
        '      - webhook: {url: "https://hooks.example.com:99999/x"}\n'
        '      - slack: {url: "https://hooks.exa mple.com/services/T/B/x"}\n'
    )
    result = run_script("validate_routes", "--routes", str(routes), env={"PATH": ""})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    output = result.stdout + result.stderr
    assert f"{routes}:5: route 'a': webhook: url is not a valid URL" in output
    assert f"{routes}:6: route 'a': webhook: url is not a valid URL: Port out of range" in output
    assert f"{routes}:7: route 'a': slack: url host 'hooks.exa mple.com' is not a valid name" in output


def test_a_replayed_batch_goes_on_past_ids_no_table_key_could_hold(azurite: str, tmp_path: Path) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text("routes:\n  - name: log\n    events: [RunStatusChanged]\n    actions:\n      - log: {}\n")
    sample = load_event("eventgrid/run_status_changed_failed.json")
    batch = [sample | {"id": "i" * 5000}, sample | {"id": "ctl\x01/#?\\"}, sample | {"id": "plain"}]
    path = tmp_path / "batch.json"
    path.write_text(json.dumps(batch))
    env = {"PATH": "", "AzureWebJobsStorage": azurite, "LEDGER_TABLE": f"l{uuid.uuid4().hex[:12]}",
           "REJECTED_TABLE": f"r{uuid.uuid4().hex[:12]}"}  # fmt: skip
    result = replay("--json", "--routes", str(routes), str(path), env=env)
    outcomes = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted((o["status"], (o["event_id"] or "")[:5]) for o in outcomes) == [
        ("done", "ctl\x01/"), ("done", "plain"), ("rejected", "")]  # fmt: skip
    assert result.returncode == 2  # something was rejected (and recorded)
