"""Every command in docs/deploy.md's shell blocks is exercised: hook scripts run against the stub
Azure (tests/infra/azure_stub.py), `azd env set` names a setting the templates or hooks read, and
each `azd` command names a real hook or a known azd command."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from deploy.common import deployment_name
from tests.infra.azure_stub import Azure
from tests.infra.test_hooks import APP_SUB, ENV, answer_workspace, deployed, provisioned, run, workspace_id

REPO_ROOT = Path(__file__).resolve().parents[2]
DOC = (REPO_ROOT / "docs" / "deploy.md").read_text()
COMMANDS = [
    line.strip()
    for block in re.findall(r"```sh\n(.*?)```", DOC, re.DOTALL)
    for line in block.splitlines()
    if line.strip() and not line.strip().startswith("#")
]
KNOWN_AZD = {("auth", "login"), ("env", "new"), ("env", "set"), ("up",), ("down",), ("hooks", "run")}
SETTINGS_READ = (REPO_ROOT / "infra" / "main.parameters.json").read_text() + "".join(
    p.read_text() for p in (REPO_ROOT / "deploy").glob("*.py")
)


def test_the_doc_has_commands() -> None:
    assert any(c.startswith("scripts/teardown.sh") for c in COMMANDS)
    assert any(c.startswith("azd env set AZURE_ML_WORKSPACE_ID") for c in COMMANDS)


@pytest.mark.parametrize("command", [c for c in COMMANDS if c.startswith("scripts/")])
def test_hook_commands_run(command: str, tmp_path: Path) -> None:
    azure = Azure(tmp_path / "azure", REPO_ROOT)
    azure.set_env(AZURE_ENV_NAME=ENV, AZURE_SUBSCRIPTION_ID=APP_SUB)
    provisioned(azure)
    answer_workspace(azure, workspace_id())
    azure.answer("eventgrid", "system-topic", "list", stdout=[])
    azure.answer("create", deployment_name(ENV, "system-topic"), stdout=deployed({"principalId": "p"}))
    azure.answer("event-subscription", "list", stdout=[])
    azure.fail("deployment", "group", "show", code="DeploymentNotFound", message="not found")
    hook, *args = shlex.split(command)
    result = run(azure, Path(hook).stem, *args)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("command", [c for c in COMMANDS if c.startswith(("azd ", "az "))])
def test_azd_commands_are_known(command: str) -> None:
    words = shlex.split(command.replace("<", "").replace(">", ""))
    if words[0] == "az":
        assert words[1:] == ["login"]
        return
    assert tuple(words[1:3]) in KNOWN_AZD or tuple(words[1:2]) in KNOWN_AZD, command
    if words[1:3] == ["hooks", "run"]:
        assert words[3] in yaml.safe_load((REPO_ROOT / "azure.yaml").read_text())["hooks"]


@pytest.mark.parametrize("name", sorted(set(re.findall(r"azd env set ([A-Z_]+)", DOC))))
def test_every_setting_the_doc_sets_is_read(name: str) -> None:
    assert name in SETTINGS_READ, name


def test_every_file_the_doc_names_exists() -> None:
    path = r"\b((?:infra|deploy|scripts|shared|tests|\.github)/[\w./-]+\.(?:bicep|py|sh|ps1|json|yml))"
    named = set(re.findall(path, DOC))
    assert len(named) >= 15
    assert [path for path in sorted(named) if not (REPO_ROOT / path).is_file()] == []
