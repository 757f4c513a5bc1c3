"""Resource Manager events (`Microsoft.Resources.Resource{Write,Delete,Action}{Success,Failure,Cancel}`).

They come from a resource group's or a subscription's system topic, for every PUT, PATCH, POST and
DELETE sent to Resource Manager: the one place a failed Azure ML deployment shows up (Azure ML emits
no event of its own for it). The outcome is the event type's: samples from Microsoft's own spec carry
`"status": "Succeeded"` on a ResourceWriteFailure, so `status` here is Succeeded/Failed/Canceled by
type, and the payload's value is kept as `operation_status`. `claims` (the caller's token claims) is
read for the caller's name and then left out of the data that routes, records and messages see.
The schema documents no error field; `error.code`/`error.message` (or a `properties.statusMessage`
holding them, as the activity log writes it) are read when a payload has them.
By default a route takes Azure ML resources only (`DEFAULT_CONDITION`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from shared.events.arm import ML_RESOURCES, ResourceSourceEvent, parse_resource_id, text_field
from shared.events.model import EventRejected, get_ci
from shared.events.workspace import Workspace

OUTCOMES = {"Success": "Succeeded", "Failure": "Failed", "Cancel": "Canceled"}
# Claims that name the caller, best first: a user's sign-in name, then any name, then an application.
_CALLER_CLAIMS = (
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn",
    "upn",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
    "unique_name",
    "name",
)
_APP_CLAIMS = ("appid", "azp")
_MAX_NESTED_JSON = 65536  # a claims or statusMessage string longer than this is not parsed
_MAX_MESSAGE = 1000


class ResourceEvent(ResourceSourceEvent):
    operation_name: str
    operation: str  # Write, Delete or Action
    resource_provider: str | None
    operation_status: str | None  # `data.status` as the payload has it
    caller: str | None
    correlation_id: str | None
    error_code: str | None
    error_message: str | None
    DEFAULT_CONDITION = ("subject", "contains", ML_RESOURCES)
    # The `data` keys routes can name (docs/fields.md); the last five are added by the app.
    FIELDS = (
        ("operation_name", "operationName", "str", True),
        ("resource_id", "resourceUri", "str", True),
        ("resource_provider", "resourceProvider", "str", False),
        ("operation_status", "status", "str", False),
        ("correlation_id", "correlationId", "str", False),
        ("", "authorization", "object", False),
        ("", "httpRequest", "object", False),
        ("", "subscriptionId", "str", False),
        ("", "tenantId", "str", False),
        ("", "resourceGroup", "str", False),
        ("resource_type", "resourceType", "str", True),
        ("", "outcome", "str", True),
        ("caller", "caller", "str", False),
        ("error_code", "errorCode", "str", False),
        ("error_message", "errorMessage", "str", False),
    )

    @classmethod
    def read(
        cls, topic: str, subject: str, data: Mapping[str, Any]
    ) -> tuple[Workspace | None, dict[str, Any], dict[str, Any]]:
        scope = parse_resource_id(topic)
        if scope is None or scope.names:
            raise EventRejected("topic", f"{topic[:200]!r} is not a subscription or resource group id")
        written = text_field(data, "resourceUri") or subject
        resource = parse_resource_id(written)
        if resource is None:
            raise EventRejected("data.resourceUri", f"{written[:200]!r} is not the id of an Azure resource")
        claims = _object(get_ci(data, "claims"))
        error_code, error_message = _error(data)
        kind = cls.__name__.removeprefix("Resource")
        fields = {
            "operation_name": text_field(data, "operationName", required=True),
            "operation": next((op for op in ("Write", "Delete", "Action") if kind.startswith(op)), ""),
            "resource_id": resource.id,
            "resource_type": resource.type,
            "resource_name": resource.name,
            "resource_provider": text_field(data, "resourceProvider"),
            "operation_status": text_field(data, "status"),
            "caller": _caller(claims) or text_field(data, "caller"),
            "correlation_id": text_field(data, "correlationId"),
            "error_code": error_code,
            "error_message": error_message,
        }
        derived = {
            "resourceType": resource.type,
            "caller": fields["caller"],
            "outcome": cls.STATUS,
            "errorCode": error_code,
            "errorMessage": error_message,
        }
        routed = {key: value for key, value in data.items() if key.lower() != "claims"}
        return resource.workspace(), fields, {**routed, **{k: v for k, v in derived.items() if v is not None}}

    @property
    def studio_url(self) -> str:
        resource = parse_resource_id(self.resource_id)
        return (resource.studio_url() if resource else None) or self.resource_link

    @property
    def title(self) -> str:
        parts = self.operation_name.split("/")
        action = parts[-2] if len(parts) > 2 and parts[-1].lower() == "action" else self.operation_name
        what = {"Write": "create/update", "Delete": "delete", "Action": action}.get(self.operation, self.operation_name)
        return f"{self.resource_name}: {what} {self.status.lower()}"

    def facts(self) -> list[tuple[str, str]]:
        error = ": ".join(part for part in (self.error_code, self.error_message) if part)
        return [
            *super().facts(),
            ("Operation", self.operation_name),
            ("Status", self.status),
            ("Error", error),
            ("Caller", self.caller or ""),
            ("Correlation id", self.correlation_id or ""),
        ]


def _make(name: str) -> type[ResourceEvent]:
    outcome = next(status for suffix, status in OUTCOMES.items() if name.endswith(suffix))
    return type(name, (ResourceEvent,), {"STATUS": outcome, "__module__": __name__})


RESOURCE_EVENT_CLASSES: tuple[type[ResourceEvent], ...] = tuple(
    _make(f"Resource{operation}{suffix}") for operation in ("Write", "Delete", "Action") for suffix in OUTCOMES
)


def _object(value: Any) -> Mapping[str, Any]:
    """An object the payload may also write as a JSON string (the spec types these as strings)."""
    if isinstance(value, str) and len(value) <= _MAX_NESTED_JSON:
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, Mapping) else {}


def _caller(claims: Mapping[str, Any]) -> str | None:
    for claim in _CALLER_CLAIMS:
        value = get_ci(claims, claim)
        if isinstance(value, str) and value.strip():
            return value.strip()[:256]
    for claim in _APP_CLAIMS:
        value = get_ci(claims, claim)
        if isinstance(value, str) and value.strip():
            return f"application {value.strip()[:64]}"
    return None


def _error(data: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(code, message) where the payload has one; never raises (it only adds to a message)."""
    error = _object(get_ci(data, "error"))
    if not error:
        status = _object(get_ci(_object(get_ci(data, "properties")), "statusMessage"))
        error = _object(get_ci(status, "error"))
    code, message = get_ci(error, "code"), get_ci(error, "message")
    return (
        str(code)[:200] if isinstance(code, (str, int)) and str(code) else None,
        " ".join(message.split())[:_MAX_MESSAGE] if isinstance(message, str) and message.strip() else None,
    )
