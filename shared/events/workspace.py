"""The Azure ML workspace an event came from, parsed from its Event Grid topic / CloudEvents source."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

STUDIO = "https://ml.azure.com"
PORTAL = "https://portal.azure.com"

_WORKSPACE_ID = re.compile(
    r"^/subscriptions/(?P<subscription>[^/]+)/resourceGroups/(?P<group>[^/]+)"
    r"/providers/Microsoft\.MachineLearningServices/workspaces/(?P<name>[^/]+)/?$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Workspace:
    subscription_id: str
    resource_group: str
    name: str

    @classmethod
    def from_resource_id(cls, resource_id: str) -> Workspace:
        """Raises ValueError when `resource_id` is not an Azure ML workspace id."""
        match = _WORKSPACE_ID.match(resource_id.strip())
        if not match:
            raise ValueError(
                "is not an Azure ML workspace id "
                "(/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.MachineLearningServices/workspaces/{name})"
            )
        return cls(match["subscription"], match["group"], match["name"])

    @property
    def resource_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.MachineLearningServices/workspaces/{self.name}"
        )

    def studio_url(self, path: str) -> str:
        """A link into Azure ML studio, scoped to this workspace (`path` like `runs/<id>`)."""
        wsid = f"/subscriptions/{self.subscription_id}/resourcegroups/{self.resource_group}/workspaces/{self.name}"
        return f"{STUDIO}/{quote(path, safe='/:')}?wsid={wsid}"

    def to_dict(self) -> dict[str, str]:
        return {
            "subscriptionId": self.subscription_id,
            "resourceGroup": self.resource_group,
            "name": self.name,
            "resourceId": self.resource_id,
        }


def portal_url(resource_id: str) -> str:
    """The Azure portal's page of a resource (or resource group, or subscription)."""
    return f"{PORTAL}/#resource{quote(resource_id.strip(), safe='/')}"
