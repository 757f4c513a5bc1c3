"""The optional sources: storage accounts, policy states, resource events (docs/event-sources.md),
each a system topic beyond the workspace's, created or adopted as the workspace's is."""

from __future__ import annotations

import re
from dataclasses import dataclass

from deploy.azcli import Cli, DeployError
from deploy.common import ROLE_NOT_REPLICATED, Env, ResourceId, deploy_group, env_tag, setting
from deploy.topics import find_topic_of, topic_identity


@dataclass(frozen=True)
class Source:
    """A system topic beyond the workspace's, and where a new one goes."""

    key: str  # in deployment names: topic-<key>, subscriptions-<key>, deadletter-<key>
    source_id: str
    topic_type: str
    prefix: str  # the event types it emits start with this (shared/functions.json)
    subscription: str  # where the topic is looked for, and a new one created …
    resource_group: str  # … in this resource group
    topic_name: str  # the name of a new topic
    location: str  # "" : the source's own region (a storage account)


def configured_sources(env: Env) -> list[Source]:
    """DATA_STORAGE_ACCOUNT_IDS, POLICY_EVENTS_SUBSCRIPTION_ID and RESOURCE_EVENTS_SCOPE, as sources."""
    found = []
    for value in re.split(r"[,\s]+", env.get("DATA_STORAGE_ACCOUNT_IDS")):
        if value:
            account = ResourceId.parse(value, "DATA_STORAGE_ACCOUNT_IDS", "Microsoft.Storage/storageAccounts")
            found.append(Source(
                f"data-{account.name}", account.value, "Microsoft.Storage.StorageAccounts", "Microsoft.Storage.",
                account.subscription, account.resource_group, f"evgt-{account.name}", "",
            ))  # fmt: skip
    policy = env.get("POLICY_EVENTS_SUBSCRIPTION_ID")
    if policy:
        if not re.fullmatch(r"[0-9a-fA-F-]{36}", policy):
            raise DeployError(f"POLICY_EVENTS_SUBSCRIPTION_ID is not a subscription id: {policy!r}")
        group = _global_topic_group(env, policy, "POLICY_EVENTS_SUBSCRIPTION_ID")
        found.append(Source(
            "policy", f"/subscriptions/{policy}", "Microsoft.PolicyInsights.PolicyStates", "Microsoft.PolicyInsights.",
            policy, group, f"evgt-policy-{policy[:8]}", "global",
        ))  # fmt: skip
    scope = env.get("RESOURCE_EVENTS_SCOPE").rstrip("/")
    if scope:
        match = re.fullmatch(r"/subscriptions/([0-9a-fA-F-]{36})(?:/resourceGroups/([^/]+))?", scope, re.IGNORECASE)
        if not match:
            raise DeployError(
                "RESOURCE_EVENTS_SCOPE is not /subscriptions/<id> or /subscriptions/<id>/resourceGroups/<group>: "
                f"{scope!r}"
            )
        subscription, group = match[1], match[2]
        kind = "ResourceGroups" if group else "Subscriptions"
        home = group or _global_topic_group(env, subscription, "RESOURCE_EVENTS_SCOPE")
        found.append(Source(
            "resources", scope, f"Microsoft.Resources.{kind}", "Microsoft.Resources.", subscription, home,
            f"evgt-resources-{group or subscription[:8]}"[:128], "global",
        ))  # fmt: skip
    return found


def _global_topic_group(env: Env, subscription: str, key: str) -> str:
    """A subscription-wide topic lives in some resource group of that subscription: the workspace's, or
    SOURCE_TOPICS_RESOURCE_GROUP."""
    group = env.get("SOURCE_TOPICS_RESOURCE_GROUP")
    if group:
        return group
    workspace = env.workspace()
    if workspace.subscription.lower() == subscription.lower():
        return workspace.resource_group
    raise DeployError(
        f"{key} names subscription {subscription}, not the workspace's: set SOURCE_TOPICS_RESOURCE_GROUP to a "
        "resource group of that subscription for its system topic"
    )


def ensure_source_topic(cli: Cli, env: Env, source: Source) -> tuple[ResourceId, str]:
    """The source's system topic, created or adopted as the workspace's is (tags merged, identities kept);
    (the topic, its identity's principal id)."""
    existing = find_topic_of(cli, source.subscription, source.source_id)
    tag = env_tag(env.name)
    if existing is None:
        topic = ResourceId.parse(
            f"/subscriptions/{source.subscription}/resourceGroups/{source.resource_group}"
            f"/providers/Microsoft.EventGrid/systemTopics/{source.topic_name}",
            "system topic",
        )
        location = source.location or (cli.az("resource", "show", "--ids", source.source_id) or {}).get("location")
        tags, adopted = {tag: "created"}, False
        cli.say(f"{source.source_id} has no system topic: creating {topic.name} in {topic.resource_group}")
    else:
        topic = ResourceId.parse(existing["id"], "system topic")
        old_tags = existing.get("tags") or {}
        adopted = old_tags.get(tag) != "created"
        tags = {**old_tags, tag: "adopted" if adopted else "created"}
        location = existing.get("location") or source.location
        cli.say(f"using the system topic {topic.name} of {source.source_id}" + (" (adopted)" * adopted))
    outputs = deploy_group(
        cli,
        env,
        f"topic-{source.key}",
        scope=topic,
        template="system-topic",
        parameters={
            "name": topic.name,
            "location": location or "global",
            "sourceId": source.source_id,
            "topicType": source.topic_type,
            "tags": tags,
            "identity": topic_identity(existing),
            "adopted": adopted,
        },
    )
    return topic, str(outputs.get("principalId") or "dry-run")


def grant_dead_letters(cli: Cli, env: Env, source: Source, principal: str) -> None:
    """The topic's identity may write dead letters into the app's container, as the workspace topic's does."""
    storage = ResourceId.parse(
        env.need("AZURE_STORAGE_ACCOUNT_ID", "run azd provision first"),
        "AZURE_STORAGE_ACCOUNT_ID",
        "Microsoft.Storage/storageAccounts",
    )
    deploy_group(
        cli,
        env,
        f"deadletter-{source.key}",
        scope=storage,
        template="../app/deadletter-rbac",
        parameters={
            "storageAccountName": storage.name,
            "deadLetterContainerName": env.get("DEAD_LETTER_CONTAINER", "deadletter"),
            "topicIdentityPrincipalId": principal,
        },
        retry_on=ROLE_NOT_REPLICATED,
        attempts=int(setting(env, "DEPLOY_ATTEMPTS", 6)),
        delay=setting(env, "DEPLOY_RETRY_SECONDS", 20),
    )
