"""Event Grid system topics: finding the one of a source (one per source, anywhere in its
subscription), its identity, and the event subscriptions on it that are this app's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deploy.azcli import Cli
from deploy.common import ResourceId


def find_topic_of(cli: Cli, subscription: str, source_id: str) -> dict[str, Any] | None:
    """The system topic whose source is ``source_id``, wherever it is in ``subscription`` (one per source)."""
    topics = cli.az("eventgrid", "system-topic", "list", "--subscription", subscription) or []
    for topic in topics:
        source = str(topic.get("source") or (topic.get("properties") or {}).get("source") or "")
        if source.strip("/").lower() == source_id.strip("/").lower():
            return topic
    return None


def topic_identity(existing: Mapping[str, Any] | None) -> dict[str, Any]:
    """System-assigned identity (dead-lettering uses it), keeping any user-assigned ones an adopted topic has."""
    identity = (existing or {}).get("identity") or {}
    user_assigned = identity.get("userAssignedIdentities") or {}
    if user_assigned:
        return {"type": "SystemAssigned, UserAssigned", "userAssignedIdentities": {k: {} for k in user_assigned}}
    return {"type": "SystemAssigned"}


def our_subscriptions(cli: Cli, topic: ResourceId, app_id: str) -> list[dict[str, Any]]:
    """Event subscriptions on the topic that deliver to this function app (and so are ours)."""
    prefix = app_id.rstrip("/").lower() + "/functions/"
    return [s for s in topic_subscriptions(cli, topic) if _destination(s).lower().startswith(prefix)]


def _destination(subscription: Mapping[str, Any]) -> str:
    destination = subscription.get("destination") or (subscription.get("properties") or {}).get("destination") or {}
    return str(destination.get("resourceId") or (destination.get("properties") or {}).get("resourceId") or "")


def topic_subscriptions(cli: Cli, topic: ResourceId) -> list[dict[str, Any]]:
    return (
        cli.az(
            "eventgrid", "system-topic", "event-subscription", "list",
            "--subscription", topic.subscription, "--resource-group", topic.resource_group,
            "--system-topic-name", topic.name,
        )
        or []
    )  # fmt: skip
