"""What the hooks share: the azd environment (`Env`), resource ids, and deployments named per
environment (`deploy_group`, `deployment_name`: teardown finds what a hook made by that name)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy.azcli import Cli, DeployError, parameters_file

REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = REPO_ROOT / "infra" / "hooks"
PROJECT = "amlevents"  # prefixes deployment names and tags, so other projects' records are never ours
MAX_DEPLOYMENT_NAME = 64

# Azure's error while a role (definition or principal) just created is still propagating.
ROLE_NOT_REPLICATED = ("RoleDefinitionDoesNotExist", "PrincipalNotFound")


@dataclass(frozen=True)
class ResourceId:
    subscription: str
    resource_group: str
    name: str
    value: str

    @classmethod
    def parse(cls, value: str, setting: str, provider_type: str | None = None) -> ResourceId:
        parts = value.strip().strip("/").split("/")
        ok = len(parts) >= 8 and parts[0].lower() == "subscriptions" and parts[2].lower() == "resourcegroups"
        if ok and provider_type:
            ok = "/".join(parts[5:7]).lower() == provider_type.lower() and len(parts) == 8
        if not ok:
            shape = f"/subscriptions/<id>/resourceGroups/<group>/providers/{provider_type or '<type>'}/<name>"
            raise DeployError(f"{setting} is not a resource id like {shape}: {value!r}")
        return cls(parts[1], parts[3], parts[-1], "/" + "/".join(parts))


def deployment_name(environment: str, purpose: str) -> str:
    """Unique per azd environment (several environments may deploy into one shared resource group)."""
    name = f"{PROJECT}-{environment}-{purpose}"
    if len(name) <= MAX_DEPLOYMENT_NAME:
        return name
    digest = hashlib.sha256(environment.encode()).hexdigest()[:8]
    keep = MAX_DEPLOYMENT_NAME - len(PROJECT) - len(purpose) - len(digest) - 3
    return f"{PROJECT}-{environment[:keep]}{digest}-{purpose}"


def env_tag(environment: str) -> str:
    """Tag put on the system topic: value 'created' or 'adopted' (tags on a shared topic are per environment)."""
    return f"{PROJECT}-{environment}"


class Env:
    """The azd environment: the process environment (azd injects it into hooks), completed with
    `azd env get-values` for values a hook set earlier in the same `azd up`, or when run by hand."""

    def __init__(self, cli: Cli) -> None:
        self.cli = cli
        self.values = {**cli.azd_env_values(), **{k: v for k, v in cli.environ.items() if v}}

    def get(self, key: str, default: str = "") -> str:
        return self.values.get(key, default).strip()

    def need(self, key: str, hint: str) -> str:
        value = self.get(key)
        if not value:
            raise DeployError(f"{key} is not set: {hint}")
        return value

    def flag(self, key: str) -> bool:
        return self.get(key).lower() in ("1", "true", "yes")

    def set(self, key: str, value: str) -> None:
        self.cli.azd_env_set(key, value)
        self.values[key] = value

    @property
    def name(self) -> str:
        return self.need("AZURE_ENV_NAME", "run through azd (azd up / azd hooks run …)")

    def workspace(self) -> ResourceId:
        return ResourceId.parse(
            self.need("AZURE_ML_WORKSPACE_ID", "azd env set AZURE_ML_WORKSPACE_ID /subscriptions/…/workspaces/<name>"),
            "AZURE_ML_WORKSPACE_ID",
            "Microsoft.MachineLearningServices/workspaces",
        )

    def topic(self) -> ResourceId:
        hint = "run the preprovision hook first (azd provision, or azd hooks run preprovision)"
        return ResourceId.parse(
            f"/subscriptions/{self.need('SYSTEM_TOPIC_SUBSCRIPTION_ID', hint)}"
            f"/resourceGroups/{self.need('SYSTEM_TOPIC_RESOURCE_GROUP', hint)}"
            f"/providers/Microsoft.EventGrid/systemTopics/{self.need('SYSTEM_TOPIC_NAME', hint)}",
            "SYSTEM_TOPIC_*",
        )

    def acs(self) -> ResourceId | None:
        value = self.get("ACS_RESOURCE_ID")
        if not value:
            return None
        return ResourceId.parse(value, "ACS_RESOURCE_ID", "Microsoft.Communication/communicationServices")


def setting(env: Env, key: str, default: int) -> float:
    raw = env.get(key)
    try:
        return float(raw) if raw else default
    except ValueError as error:
        raise DeployError(f"{key} must be a number, not {raw!r}") from error


def deploy_group(
    cli: Cli,
    env: Env,
    purpose: str,
    *,
    scope: ResourceId,
    parameters: Mapping[str, Any],
    retry_on: tuple[str, ...] = (),
    attempts: int = 1,
    delay: float = 0,
    template: str | None = None,
) -> dict[str, Any]:
    """`az deployment group create` of infra/hooks/<purpose>.bicep (or <template>.bicep, for a template
    deployed once per source) into the resource group of ``scope``, named for the environment and purpose
    (teardown finds it by that name); returns its outputs."""
    name = deployment_name(env.name, purpose)
    template = template or purpose
    cli.say(f"deploying infra/hooks/{template}.bicep to {scope.resource_group} as {name}")
    with parameters_file(parameters) as path:
        if cli.dry_run:
            cli.say(f"  parameters: {json.dumps(dict(parameters), sort_keys=True)}")
        args = (
            "deployment", "group", "create",
            "--subscription", scope.subscription,
            "--resource-group", scope.resource_group,
            "--name", name,
            "--template-file", str(TEMPLATES / f"{template}.bicep"),
            "--parameters", f"@{path}",
        )  # fmt: skip
        result = cli.az_retrying(*args, transient=retry_on, attempts=attempts, delay=delay)
    outputs = ((result or {}).get("properties") or {}).get("outputs") or {}
    return {key: value.get("value") for key, value in outputs.items()}
