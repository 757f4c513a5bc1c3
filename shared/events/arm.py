"""Azure Resource Manager ids, the base of events from outside the workspace, and links to them.

Events from storage accounts, Azure Policy and Resource Manager are about Azure resources, named by
their ARM ids. Real ids vary in case (`resourcegroups`, `microsoft.machinelearningservices`), so
everything here compares case-insensitively and keeps the id as written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from shared.events.model import AmlEvent, EventRejected, get_ci
from shared.events.workspace import Workspace, portal_url

ML_PROVIDER = "Microsoft.MachineLearningServices"
# What a route on policy or resource events takes unless it says otherwise: Azure ML resources.
ML_RESOURCES = f"/providers/{ML_PROVIDER}/"
# Longest id or name kept from a payload: ARM ids are at most a few hundred characters.
MAX_ID_LENGTH = 2048

_SUBSCRIPTION = re.compile(r"^/subscriptions/(?P<subscription>[^/]+)(?P<rest>/.*)?$", re.IGNORECASE)
_GROUP = re.compile(r"^/resourceGroups/(?P<group>[^/]+)(?P<rest>/.*)?$", re.IGNORECASE)
_MANAGEMENT_GROUP = re.compile(
    r"^/(tenants/[^/]+/)?providers/Microsoft\.Management/managementGroups/[^/]+/?$", re.IGNORECASE
)


@dataclass(frozen=True)
class ResourceId:
    """An ARM id taken apart: `type` is `Namespace/type[/child type]` of the innermost provider."""

    id: str
    subscription_id: str
    resource_group: str | None
    type: str
    names: tuple[str, ...]  # the resource's name and its parents', outermost first

    @property
    def name(self) -> str:
        return self.names[-1] if self.names else (self.resource_group or self.subscription_id)

    @property
    def is_ml(self) -> bool:
        return self.type.lower().startswith(ML_PROVIDER.lower() + "/")

    @property
    def portal_url(self) -> str:
        return portal_url(self.id)

    def workspace(self) -> Workspace | None:
        """The Azure ML workspace this resource is or belongs to."""
        parts = self.type.split("/")
        if not self.is_ml or len(parts) < 2 or parts[1].lower() != "workspaces" or not self.resource_group:
            return None
        return Workspace(self.subscription_id, self.resource_group, self.names[0])

    def studio_url(self) -> str | None:
        """The resource's page in Azure ML studio, for the kinds studio shows; else None."""
        workspace = self.workspace()
        if workspace is None:
            return None
        kinds = [part.lower() for part in self.type.split("/")[2:]]
        names = self.names[1:]
        if not kinds:
            return workspace.studio_url("")
        pages = {
            "onlineendpoints": "endpoints/realtime/{}/detail",
            "batchendpoints": "endpoints/batch/{}/detail",
            "computes": "compute/{}/details",
        }
        page = pages.get(kinds[0])
        return workspace.studio_url(page.format(names[0])) if page and names else workspace.studio_url("")


def parse_resource_id(text: str) -> ResourceId | None:
    """An ARM id of a subscription, resource group or resource (extension resources take the
    innermost provider), or None."""
    if not isinstance(text, str) or len(text) > MAX_ID_LENGTH:
        return None
    resource_id = text.strip().rstrip("/")
    match = _SUBSCRIPTION.match(resource_id)
    if not match:
        return None
    subscription, rest = match["subscription"], match["rest"] or ""
    group = None
    if grouped := _GROUP.match(rest):
        group, rest = grouped["group"], grouped["rest"] or ""
    if not rest:
        kind = "Microsoft.Resources/resourceGroups" if group else "Microsoft.Resources/subscriptions"
        return ResourceId(resource_id, subscription, group, kind, ())
    segments = rest.strip("/").split("/")
    last = max((i for i, part in enumerate(segments) if part.lower() == "providers"), default=-1)
    tail = segments[last + 1 :]
    if last < 0 or len(tail) < 3 or len(tail) % 2 == 0:
        return None
    namespace, pairs = tail[0], tail[1:]
    types, names = pairs[0::2], pairs[1::2]
    if not all(types) or not all(names):
        return None
    return ResourceId(resource_id, subscription, group, "/".join([namespace, *types]), tuple(names))


def is_management_group(text: str) -> bool:
    return bool(_MANAGEMENT_GROUP.match(text.strip()))


def text_field(data: Mapping[str, Any], key: str, *, required: bool = False, limit: int = MAX_ID_LENGTH) -> str | None:
    """A string data field, stripped; numbers are taken as written. Raises EventRejected naming it."""
    value = get_ci(data, key)
    where = f"data.{key}"
    if value is None or value == "":
        if required:
            raise EventRejected(where, "is required for this event type but missing or empty")
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise EventRejected(where, f"must be a string, got {type(value).__name__}")
    text = str(value).strip()
    if len(text) > limit:
        raise EventRejected(where, f"is {len(text)} characters long (at most {limit})")
    if required and not text:
        raise EventRejected(where, "is required for this event type but empty")
    return text or None


class SourceEvent(AmlEvent):
    """An event from outside the workspace: its class reads the payload itself (`read`), and
    `workspace` is the Azure ML workspace it concerns when one can be told (else None)."""

    #: a `when:` condition a route on this type gets unless it has its own on the same path
    DEFAULT_CONDITION: ClassVar[tuple[str, str, str] | None] = None
    #: what the event's outcome is called in messages ("Created", "Failed", ...)
    STATUS: ClassVar[str] = ""

    @classmethod
    def read(
        cls, topic: str, subject: str, data: Mapping[str, Any]
    ) -> tuple[Workspace | None, dict[str, Any], dict[str, Any]]:
        """(workspace, typed fields, data as routes see it) from the payload; raises EventRejected."""
        raise NotImplementedError

    @property
    def status(self) -> str:
        return self.STATUS

    @property
    def resource_link(self) -> str:
        return portal_url(self.topic)

    @property
    def studio_url(self) -> str:
        return self.resource_link

    def facts(self) -> list[tuple[str, str]]:
        return [("Workspace", self.workspace.name)] if self.workspace is not None else []


class ResourceSourceEvent(SourceEvent):
    """A SourceEvent about one Azure resource: linked to it in the portal, named first in its facts."""

    resource_id: str
    resource_type: str
    resource_name: str

    @property
    def resource_link(self) -> str:
        resource = parse_resource_id(self.resource_id)
        return resource.portal_url if resource else super().resource_link

    def facts(self) -> list[tuple[str, str]]:
        return [*super().facts(), ("Resource", self.resource_id), ("Resource type", self.resource_type)]
