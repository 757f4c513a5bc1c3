"""teardown: what this environment created outside its resource group (found by deployment name),
listed, confirmed, removed; what others still use (an adopted or shared topic, a role still assigned)
is kept, with why."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from deploy.azcli import AzError, Cli
from deploy.common import PROJECT, Env, ResourceId, deployment_name, env_tag
from deploy.sources import configured_sources
from deploy.topics import find_topic_of, our_subscriptions, topic_subscriptions


@dataclass(frozen=True)
class Removal:
    what: str
    command: tuple[str, ...]


def _record(cli: Cli, scope: ResourceId, name: str) -> dict[str, Any] | None:
    """A hook deployment's record (what it created, its outputs), or None if there is none."""
    try:
        return cli.az(
            "deployment", "group", "show", "--subscription", scope.subscription,
            "--resource-group", scope.resource_group, "--name", name,
        )  # fmt: skip
    except AzError as error:
        if "DeploymentNotFound" in error.stderr or "ResourceGroupNotFound" in error.stderr:
            return None
        raise


def _created(record: Mapping[str, Any] | None) -> list[str]:
    return [r["id"] for r in ((record or {}).get("properties") or {}).get("outputResources") or []]


def _record_removal(scope: ResourceId, name: str) -> Removal:
    return Removal(
        f"deployment record {name} in {scope.resource_group}",
        ("deployment", "group", "delete", "--subscription", scope.subscription,
         "--resource-group", scope.resource_group, "--name", name),
    )  # fmt: skip


def _delete(resource_id: str, what: str) -> Removal:
    if "/providers/microsoft.authorization/roleassignments/" in resource_id.lower():
        return Removal(what, ("role", "assignment", "delete", "--ids", resource_id))
    return Removal(what, ("resource", "delete", "--ids", resource_id))


def plan_teardown(cli: Cli, env: Env) -> tuple[list[Removal], list[str]]:
    """What this environment created outside its resource group, and what it leaves (with why)."""
    removals: list[Removal] = []
    kept: list[str] = []
    if env.get("SYSTEM_TOPIC_NAME"):
        _plan_topic(cli, env, env.topic(), removals, kept)
    for source in configured_sources(env):
        found = find_topic_of(cli, source.subscription, source.source_id)
        if found is not None:
            topic = ResourceId.parse(found["id"], "system topic")
            _plan_topic(cli, env, topic, removals, kept, topic_purpose=f"topic-{source.key}",
                        subscriptions_purpose=f"subscriptions-{source.key}")  # fmt: skip
    workspace = env.workspace()
    for purpose in ("workspace-access", "ml-policies"):
        name = deployment_name(env.name, purpose)
        record = _record(cli, workspace, name)
        if record is not None:
            removals += [_delete(r, f"{_kind(r)} on workspace {workspace.name}") for r in _created(record)]
            removals.append(_record_removal(workspace, name))
    acs = env.acs()
    if acs is not None:
        _plan_acs(cli, env, acs, removals, kept)
    kept.append("the Microsoft.EventGrid provider registration (harmless, shared by the subscription)")
    return removals, kept


def _plan_topic(
    cli: Cli,
    env: Env,
    topic: ResourceId,
    removals: list[Removal],
    kept: list[str],
    *,
    topic_purpose: str = "system-topic",
    subscriptions_purpose: str = "eventgrid-subscriptions",
) -> None:
    app_id = env.get("AZURE_FUNCTION_APP_ID")
    ours = our_subscriptions(cli, topic, app_id) if app_id else []
    removals += [_delete(s["id"], f"event subscription {s['name']} on {topic.name}") for s in ours]
    name = deployment_name(env.name, subscriptions_purpose)
    if _record(cli, topic, name) is not None:
        removals.append(_record_removal(topic, name))

    name = deployment_name(env.name, topic_purpose)
    record = _record(cli, topic, name)
    if record is None:
        return
    adopted = bool((((record.get("properties") or {}).get("outputs") or {}).get("adopted") or {}).get("value"))
    tag = env_tag(env.name)
    tags = (cli.az("resource", "show", "--ids", topic.value) or {}).get("tags") or {}
    users = [k for k in tags if k.startswith(f"{PROJECT}-") and k != tag]
    ours_ids = {s["id"].lower() for s in ours}
    users += [s["name"] for s in topic_subscriptions(cli, topic) if s["id"].lower() not in ours_ids]
    if adopted or users:
        why = "it existed before" if adopted else "others use it: " + ", ".join(users)
        kept.append(f"system topic {topic.name} ({why}); only this environment's tag is removed")
        value = "adopted" if adopted else "created"
        command = ("tag", "update", "--resource-id", topic.value, "--operation", "Delete", "--tags", f"{tag}={value}")
        removals.append(Removal(f"tag {tag} on system topic {topic.name}", command))
    else:
        removals.append(_delete(topic.value, f"system topic {topic.name} (created by this environment)"))
    removals.append(_record_removal(topic, name))


def _plan_acs(cli: Cli, env: Env, acs: ResourceId, removals: list[Removal], kept: list[str]) -> None:
    name = deployment_name(env.name, "acs-sender-assignment")
    record = _record(cli, acs, name)
    if record is not None:
        removals += [_delete(r, f"ACS sender role assignment on {acs.name}") for r in _created(record)]
        removals.append(_record_removal(acs, name))
    name = deployment_name(env.name, "acs-sender-role")
    record = _record(cli, acs, name)
    if record is None:
        return
    for role in _created(record):
        role_name = role.rsplit("/", 1)[-1]
        assignments = cli.az(
            "role", "assignment", "list", "--all", "--role", role_name, "--subscription", acs.subscription
        ) or []  # fmt: skip
        others = [a for a in assignments if a.get("principalId") != env.get("APP_PRINCIPAL_ID")]
        if others:
            kept.append(f"custom role {role_name} (still assigned to {len(others)} other principal(s))")
            continue
        scope = f"/subscriptions/{acs.subscription}/resourceGroups/{acs.resource_group}"
        command = ("role", "definition", "delete", "--name", role_name, "--scope", scope)
        removals.append(Removal(f"custom role definition {role_name} (ACS Email Sender)", command))
    removals.append(_record_removal(acs, name))


def _kind(resource_id: str) -> str:
    lowered = resource_id.lower()
    if "/roleassignments/" in lowered:
        return "role assignment"
    if "/policyassignments/" in lowered:
        return "policy assignment " + resource_id.rsplit("/", 1)[-1]
    return resource_id


def teardown(cli: Cli, env: Env, *, assume_yes: bool, confirm: Callable[[str], str] = input) -> None:
    removals, kept = plan_teardown(cli, env)
    cli.say(f"Outside its resource group, environment {env.name!r} created:")
    for removal in removals:
        cli.say(f"  - {removal.what}")
    if not removals:
        cli.say("  (nothing left)")
    for item in kept:
        cli.say(f"  kept: {item}")
    if not removals:
        return
    if not (assume_yes or cli.dry_run):
        try:
            answer = confirm(f"Remove these {len(removals)} items? [y/N] ")
        except EOFError:  # no terminal (CI): never assume yes
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            cli.say("nothing removed")
            return
    for removal in removals:
        cli.say(f"removing {removal.what}")
        try:
            cli.az(*removal.command, change=True)
        except AzError as error:
            if not re.search(r"NotFound|does not exist|could not be found", error.stderr, re.IGNORECASE):
                raise
    cli.say("done. `azd down` removes the app's resource group (and with it the rest).")
