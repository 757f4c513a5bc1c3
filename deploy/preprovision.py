"""preprovision: the workspace's system topic (created, or adopted with its tags merged), the
Event Grid provider registered, a soft-deleted Key Vault of this environment purged."""

from __future__ import annotations

from typing import Any

from deploy.azcli import AzError, Cli, DeployError
from deploy.common import Env, ResourceId, deploy_group, env_tag
from deploy.topics import find_topic_of, topic_identity


def ensure_event_grid_registered(cli: Cli, subscriptions: list[str]) -> None:
    """Event Grid reads the function's key with its own service principal in the app's subscription,
    which needs the provider registered there even when the workspace (and topic) are elsewhere."""
    for subscription in dict.fromkeys(subscriptions):
        provider = cli.az("provider", "show", "--namespace", "Microsoft.EventGrid", "--subscription", subscription)
        if (provider or {}).get("registrationState") == "Registered":
            continue
        cli.say(f"registering the Microsoft.EventGrid resource provider in subscription {subscription}")
        cli.az(
            "provider", "register", "--namespace", "Microsoft.EventGrid", "--subscription", subscription, "--wait",
            change=True,
        )  # fmt: skip


def find_system_topic(cli: Cli, workspace: ResourceId) -> dict[str, Any] | None:
    """The workspace's system topic, wherever it is in the workspace's subscription (only one may exist)."""
    return find_topic_of(cli, workspace.subscription, workspace.value)


def purge_deleted_key_vault(cli: Cli, env: Env, subscription: str) -> None:
    """`azd down` without --purge leaves the vault soft-deleted under its name for 7 days; the same
    environment would then fail to create it. Purge only the vault this environment made before."""
    vault = env.get("AZURE_KEY_VAULT_NAME")
    if not vault:
        return
    deleted = cli.az("keyvault", "list-deleted", "--subscription", subscription, "--resource-type", "vault") or []
    for entry in deleted:
        if str(entry.get("name", "")).lower() == vault.lower():
            location = (entry.get("properties") or {}).get("location") or env.get("AZURE_LOCATION")
            cli.say(f"purging the soft-deleted Key Vault {vault} this environment created (azd down without --purge)")
            cli.az(
                "keyvault", "purge", "--name", vault, "--location", location, "--subscription", subscription,
                change=True,
            )  # fmt: skip


def preprovision(cli: Cli, env: Env) -> None:
    environment = env.name
    workspace = env.workspace()
    app_subscription = env.need(
        "AZURE_SUBSCRIPTION_ID",
        "`azd up` asks for it before this hook; with `azd provision` on a new environment, "
        "run `azd env set AZURE_SUBSCRIPTION_ID <id>` (and AZURE_LOCATION) first",
    )
    existing_acs = env.get("EXISTING_ACS_RESOURCE_ID")
    if existing_acs:
        ResourceId.parse(existing_acs, "EXISTING_ACS_RESOURCE_ID", "Microsoft.Communication/communicationServices")
        env.need("EXISTING_EMAIL_SENDER", "with EXISTING_ACS_RESOURCE_ID, give the sender address (docs/deploy.md)")

    try:
        found = cli.az("resource", "show", "--ids", workspace.value) or {}
    except AzError as error:
        message = f"cannot read the workspace {workspace.value} (wrong id, or no access):\n{error.stderr.strip()}"
        raise DeployError(message) from None
    workspace_location = found.get("location")
    if not workspace_location:
        raise DeployError(f"Azure returned no location for the workspace {workspace.value}")

    ensure_event_grid_registered(cli, [app_subscription, workspace.subscription])
    purge_deleted_key_vault(cli, env, app_subscription)

    existing = find_system_topic(cli, workspace)
    tag = env_tag(environment)
    if existing is None:
        name = f"evgt-{workspace.name}".replace("_", "-")[:128]  # topic names: letters, digits, hyphens
        topic = ResourceId.parse(
            f"/subscriptions/{workspace.subscription}/resourceGroups/{workspace.resource_group}"
            f"/providers/Microsoft.EventGrid/systemTopics/{name}",
            "system topic",
        )
        tags, location, adopted = {tag: "created"}, workspace_location, False
        cli.say(f"the workspace has no system topic: creating {topic.name} in {topic.resource_group}")
    else:
        topic = ResourceId.parse(existing["id"], "system topic")
        old_tags = existing.get("tags") or {}
        adopted = old_tags.get(tag) != "created"
        tags = {**old_tags, tag: "adopted" if adopted else "created"}  # merged: the owner's tags stay
        location = existing.get("location") or workspace_location
        cli.say(f"using the workspace's system topic {topic.name} in {topic.resource_group}" + (" (adopted)" * adopted))

    outputs = deploy_group(
        cli,
        env,
        "system-topic",
        scope=topic,
        parameters={
            "name": topic.name,
            "location": location,
            "sourceId": workspace.value,
            "tags": tags,
            "identity": topic_identity(existing),
            "adopted": adopted,
        },
    )
    env.set("SYSTEM_TOPIC_NAME", topic.name)
    env.set("SYSTEM_TOPIC_RESOURCE_GROUP", topic.resource_group)
    env.set("SYSTEM_TOPIC_SUBSCRIPTION_ID", topic.subscription)
    env.set("SYSTEM_TOPIC_PRINCIPAL_ID", str(outputs.get("principalId") or "dry-run"))
    if existing_acs:
        acs = cli.az("resource", "show", "--ids", existing_acs) or {}
        env.set("EXISTING_ACS_ENDPOINT", "https://" + str((acs.get("properties") or {}).get("hostName", "")))
