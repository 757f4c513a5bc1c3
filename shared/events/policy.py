"""Azure Policy compliance events (`Microsoft.PolicyInsights.PolicyStateCreated`, `…Changed`, `…Deleted`).

They come from a subscription's (or a management group's) policy system topic; the subject is the
id of the resource whose compliance state changed. The payload has ids only (and writes them in
lower case: `microsoft.authorization/policyassignments/…`), so the readable names are the last
segment of each id: the assignment's name, and the definition's (a GUID for built-in definitions).
By default a route takes Azure ML resources only (`DEFAULT_CONDITION`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from shared.events.arm import (
    ML_RESOURCES,
    ResourceSourceEvent,
    is_management_group,
    parse_resource_id,
    text_field,
)
from shared.events.model import EventRejected
from shared.events.workspace import Workspace

COMPLIANCE_STATES = ("Compliant", "NonCompliant", "Conflict", "Exempt", "Unknown", "Error", "Protected")
_STATE_BY_LOWER = {state.lower(): state for state in COMPLIANCE_STATES}


class PolicyStateEvent(ResourceSourceEvent):
    compliance_state: str
    compliance_reason_code: str | None
    policy_assignment_id: str
    policy_assignment_name: str
    policy_definition_id: str
    policy_definition_name: str
    policy_definition_reference_id: str | None  # the definition inside an initiative
    timestamp: datetime | None  # when Azure Policy evaluated the resource (order by this, not eventTime)
    DEFAULT_CONDITION = ("subject", "contains", ML_RESOURCES)
    # The `data` keys routes can name (docs/fields.md); the last four are added by the app.
    FIELDS = (
        ("compliance_state", "complianceState", "str", True),
        ("policy_assignment_id", "policyAssignmentId", "str", True),
        ("policy_definition_id", "policyDefinitionId", "str", True),
        ("policy_definition_reference_id", "policyDefinitionReferenceId", "str", False),
        ("compliance_reason_code", "complianceReasonCode", "str", False),
        ("timestamp", "timestamp", "str", False),
        ("", "subscriptionId", "str", False),
        ("resource_id", "resourceId", "str", True),
        ("resource_type", "resourceType", "str", True),
        ("policy_assignment_name", "policyAssignmentName", "str", True),
        ("policy_definition_name", "policyDefinitionName", "str", True),
    )

    @classmethod
    def read(
        cls, topic: str, subject: str, data: Mapping[str, Any]
    ) -> tuple[Workspace | None, dict[str, Any], dict[str, Any]]:
        scope = parse_resource_id(topic)
        if not is_management_group(topic) and (scope is None or scope.resource_group or scope.names):
            raise EventRejected("topic", f"{topic[:200]!r} is not a subscription or management group id")
        resource = parse_resource_id(subject)
        if resource is None:
            raise EventRejected("subject", f"{subject[:200]!r} is not the id of an Azure resource")
        assignment = text_field(data, "policyAssignmentId", required=True)
        definition = text_field(data, "policyDefinitionId", required=True)
        state = text_field(data, "complianceState", required=True)
        assert assignment and definition and state  # required: text_field raised otherwise
        fields = {
            "resource_id": resource.id,
            "resource_type": resource.type,
            "resource_name": resource.name,
            "compliance_state": _STATE_BY_LOWER.get(state.lower(), state),
            "compliance_reason_code": text_field(data, "complianceReasonCode"),
            "policy_assignment_id": assignment,
            "policy_assignment_name": _last_segment(assignment),
            "policy_definition_id": definition,
            "policy_definition_name": _last_segment(definition),
            "policy_definition_reference_id": text_field(data, "policyDefinitionReferenceId"),
            "timestamp": _timestamp(data),
        }
        derived = {
            "complianceState": fields["compliance_state"],
            "resourceId": resource.id,
            "resourceType": resource.type,
            "policyAssignmentName": fields["policy_assignment_name"],
            "policyDefinitionName": fields["policy_definition_name"],
        }
        return resource.workspace(), fields, {**_without(data, "complianceState"), **derived}

    @property
    def status(self) -> str:
        return self.compliance_state

    @property
    def studio_url(self) -> str:
        # The compliance of a resource is shown in the portal, not in Azure ML studio.
        return self.resource_link

    @property
    def title(self) -> str:
        verb = {"PolicyStateDeleted": "no longer evaluated"}.get(self.short_type, self.compliance_state)
        return f"{self.resource_name}: {verb} ({self.policy_assignment_name})"

    def facts(self) -> list[tuple[str, str]]:
        return [
            *super().facts(),
            ("Compliance", self.compliance_state),
            ("Policy assignment", self.policy_assignment_name),
            ("Policy definition", self.policy_definition_name),
            ("In initiative as", self.policy_definition_reference_id or ""),
            ("Reason", self.compliance_reason_code or ""),
            ("Evaluated", self.timestamp.strftime("%Y-%m-%d %H:%M:%S UTC") if self.timestamp else ""),
        ]


class PolicyStateCreated(PolicyStateEvent):
    pass


class PolicyStateChanged(PolicyStateEvent):
    pass


class PolicyStateDeleted(PolicyStateEvent):
    pass


def _last_segment(resource_id: str) -> str:
    return resource_id.rstrip("/").rsplit("/", 1)[-1]


def _without(data: Mapping[str, Any], key: str) -> dict[str, Any]:
    return {name: value for name, value in data.items() if name.lower() != key.lower()}


def _timestamp(data: Mapping[str, Any]) -> datetime | None:
    text = text_field(data, "timestamp", limit=64)
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise EventRejected("data.timestamp", f"is not an ISO 8601 time: {text!r}") from None
