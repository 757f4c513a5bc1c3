"""Typed Azure ML events, parsed from either Event Grid schema or CloudEvents 1.0.

Real payloads differ from the documentation (key casing, ModelVersion as a number, `runType: null`,
`failed` in lower case, an empty `dataVersion`), so every `data` lookup here is case-insensitive and
every field is normalised once, at parse time. Anything that cannot be understood raises
`EventRejected` naming the field; callers record it and return normally (a poison event must not be
redelivered by Event Grid for 24 hours).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from shared.catalog import FUNCTION_FOR_EVENT_TYPE, full_event_type, short_event_type
from shared.workspace import Workspace

# AML run-history statuses in their documented spelling (azure-ai-ml JobStatus).
RUN_STATUSES = (
    "NotStarted", "Starting", "Provisioning", "Preparing", "Queued", "Running", "Finalizing",
    "CancelRequested", "Completed", "Failed", "Canceled", "NotResponding", "Paused", "Unknown",
)  # fmt: skip
_RUN_STATUS_BY_LOWER = {status.lower(): status for status in RUN_STATUSES} | {"cancelled": "Canceled"}


class EventRejected(ValueError):
    """An event that cannot be understood. `field` names the offending part of the payload."""

    def __init__(self, field: str, problem: str, event_id: str | None = None) -> None:
        self.field = field
        self.problem = problem
        self.event_id = event_id
        super().__init__(f"{field}: {problem}" if field else problem)


def get_ci(mapping: Mapping[str, Any], key: str, default: Any = None) -> Any:
    """`mapping[key]` with the key compared case-insensitively (exact match preferred)."""
    if key in mapping:
        return mapping[key]
    lowered = key.lower()
    for candidate, value in mapping.items():
        if isinstance(candidate, str) and candidate.lower() == lowered:
            return value
    return default


@dataclass(frozen=True)
class AmlEvent:
    """Fields common to every Azure ML event, whatever the delivery schema."""

    id: str
    event_type: str
    subject: str
    topic: str
    event_time: datetime | None
    data: Mapping[str, Any]
    data_version: str
    schema: str  # "EventGrid" or "CloudEvents"
    workspace: Workspace
    fields: Mapping[str, Any] = field(default_factory=dict)  # the typed, normalised data fields
    # Details fetched from the workspace for a route with `enrich: true` (shared/enrichment.py).
    enrichment: Any = field(default=None, compare=False, repr=False)

    # Set by each subclass, next to the annotations that type them: the data fields read from the
    # payload as (attribute, key, kind, required). Values live in `fields`, read through __getattr__.
    FIELDS: ClassVar[tuple[tuple[str, str, str, bool], ...]] = ()

    def __getattr__(self, name: str) -> Any:
        # Typed access to normalised data fields (`event.run_id`), declared in FIELDS.
        fields = self.__dict__.get("fields", {})
        if name in fields:
            return fields[name]
        raise AttributeError(name)

    @property
    def short_type(self) -> str:
        return short_event_type(self.event_type)

    @property
    def function(self) -> str:
        return FUNCTION_FOR_EVENT_TYPE[self.event_type]

    @property
    def studio_url(self) -> str:
        return self.workspace.studio_url("")

    @property
    def title(self) -> str:
        return self.short_type

    def facts(self) -> list[tuple[str, str]]:
        """The facts a reader needs, as (label, value) pairs, most important first."""
        return [("Workspace", self.workspace.name)]

    def get(self, key: str, default: Any = None) -> Any:
        """A `data` field by name, case-insensitively."""
        return get_ci(self.data, key, default)

    def to_dict(self) -> dict[str, Any]:
        """The normalised event as JSON-ready data (webhook bodies, templates, replay output)."""
        return {
            "id": self.id,
            "eventType": self.event_type,
            "subject": self.subject,
            "topic": self.topic,
            "eventTime": self.event_time.isoformat() if self.event_time else None,
            "dataVersion": self.data_version,
            "schema": self.schema,
            "workspace": self.workspace.to_dict(),
            "studioUrl": self.studio_url,
            "title": self.title,
            "fields": {name: value for name, value in self.fields.items()},
            "data": dict(self.data),
        }


class RunEvent(AmlEvent):
    experiment_id: str | None
    experiment_name: str | None
    run_id: str
    run_type: str | None
    run_tags: dict[str, Any]
    run_properties: dict[str, Any]
    FIELDS = (
        ("experiment_id", "experimentId", "str", False),
        ("experiment_name", "experimentName", "str", False),
        ("run_id", "runId", "str", True),
        ("run_type", "runType", "str", False),
        ("run_tags", "runTags", "object", False),
        ("run_properties", "runProperties", "object", False),
    )

    @property
    def studio_url(self) -> str:
        return self.workspace.studio_url(f"runs/{self.run_id}")

    @property
    def status(self) -> str:
        return "Completed"

    @property
    def title(self) -> str:
        return f"Run {self.run_id} {self.status.lower()}"

    def facts(self) -> list[tuple[str, str]]:
        facts = [
            ("Workspace", self.workspace.name),
            ("Experiment", self.experiment_name or self.experiment_id or ""),
            ("Run", self.run_id),
            ("Status", self.status),
        ]
        if self.run_type:
            facts.append(("Run type", self.run_type))
        return facts


class RunCompleted(RunEvent):
    pass


class RunStatusChanged(RunEvent):
    run_status: str
    FIELDS = (*RunEvent.FIELDS, ("run_status", "runStatus", "status", True))

    @property
    def status(self) -> str:
        return self.run_status


class ModelRegistered(AmlEvent):
    model_name: str
    model_version: str
    model_tags: dict[str, Any]
    model_properties: dict[str, Any]
    FIELDS = (
        ("model_name", "ModelName", "str", True),
        ("model_version", "ModelVersion", "version", True),
        ("model_tags", "ModelTags", "object", False),
        ("model_properties", "ModelProperties", "object", False),
    )

    @property
    def studio_url(self) -> str:
        return self.workspace.studio_url(f"model/{self.model_name}:{self.model_version}/details")

    @property
    def title(self) -> str:
        return f"Model {self.model_name}:{self.model_version} registered"

    def facts(self) -> list[tuple[str, str]]:
        return [
            ("Workspace", self.workspace.name),
            ("Model", self.model_name),
            ("Version", self.model_version),
        ]


class ModelDeployed(AmlEvent):
    service_name: str
    service_compute_type: str | None
    model_ids: list[str]
    service_tags: dict[str, Any]
    service_properties: dict[str, Any]
    FIELDS = (
        ("service_name", "ServiceName", "str", True),
        ("service_compute_type", "ServiceComputeType", "str", False),
        ("model_ids", "ModelIds", "idlist", False),
        ("service_tags", "ServiceTags", "object", False),
        ("service_properties", "ServiceProperties", "object", False),
    )

    @property
    def studio_url(self) -> str:
        return self.workspace.studio_url(f"endpoints/realtime/{self.service_name}/detail")

    @property
    def title(self) -> str:
        return f"Deployed to {self.service_name}"

    def facts(self) -> list[tuple[str, str]]:
        return [
            ("Workspace", self.workspace.name),
            ("Service", self.service_name),
            ("Compute", self.service_compute_type or ""),
            ("Models", ", ".join(self.model_ids)),
        ]


class DatasetDriftDetected(AmlEvent):
    data_drift_id: str
    data_drift_name: str | None
    run_id: str | None
    base_dataset_id: str | None
    target_dataset_id: str | None
    drift_coefficient: float | None
    start_time: str | None
    end_time: str | None
    FIELDS = (
        ("data_drift_id", "DataDriftId", "str", True),
        ("data_drift_name", "DataDriftName", "str", False),
        ("run_id", "RunId", "str", False),
        ("base_dataset_id", "BaseDatasetId", "str", False),
        ("target_dataset_id", "TargetDatasetId", "str", False),
        ("drift_coefficient", "DriftCoefficient", "number", False),
        ("start_time", "StartTime", "str", False),
        ("end_time", "EndTime", "str", False),
    )

    @property
    def studio_url(self) -> str:
        # The drift monitor's own run is the page that shows the drift results.
        if self.run_id:
            return self.workspace.studio_url(f"runs/{self.run_id}")
        return self.workspace.studio_url("")

    @property
    def title(self) -> str:
        return f"Data drift detected by {self.data_drift_name or self.data_drift_id}"

    @property
    def coefficient_text(self) -> str:
        return "" if self.drift_coefficient is None else f"{self.drift_coefficient:.4f}"

    def facts(self) -> list[tuple[str, str]]:
        return [
            ("Workspace", self.workspace.name),
            ("Monitor", self.data_drift_name or self.data_drift_id),
            ("Drift coefficient", self.coefficient_text),
            ("Window", f"{self.start_time or '?'} → {self.end_time or '?'}"),
        ]


class ModelMonitorDrift(DatasetDriftDetected):
    """A v2 model monitor signal that breached its thresholds, as a drift event (shared/monitoring.py
    derives it from the signal run's RunStatusChanged). v2 reports no datasets and no window: those
    fields stay empty; `violations` are the rows the monitor reported (group, metric, value, threshold)."""

    signal_name: str | None
    monitor: str | None
    violations: list[dict[str, Any]]
    FIELDS = (
        *DatasetDriftDetected.FIELDS,
        ("signal_name", "SignalName", "str", False),
        ("monitor", "Monitor", "str", False),
        ("violations", "Violations", "rows", False),
    )

    @property
    def title(self) -> str:
        return f"Model monitor signal '{self.data_drift_name}' breached"

    def facts(self) -> list[tuple[str, str]]:
        return [
            ("Workspace", self.workspace.name),
            ("Monitor", self.monitor or ""),
            ("Signal", self.signal_name or ""),
            ("Violations", violations_text(self.violations)),
            ("Drift coefficient", self.coefficient_text),
            ("Run", self.run_id or ""),
        ]


# How many violating rows a message lists before "and N more".
VIOLATIONS_SHOWN = 5


def violations_text(rows: list[dict[str, Any]]) -> str:
    """`age: JensenShannonDistance 0.41 (threshold 0.1); …`: one line for a fact."""
    lines = []
    for row in rows[:VIOLATIONS_SHOWN]:
        value = "?" if row.get("metric_value") is None else f"{row['metric_value']:g}"
        threshold = "?" if row.get("threshold_value") is None else f"{row['threshold_value']:g}"
        where = f"{row['group']}: " if row.get("group") else ""
        lines.append(f"{where}{row.get('metric_name') or 'metric'} {value} (threshold {threshold})")
    if len(rows) > VIOLATIONS_SHOWN:
        lines.append(f"and {len(rows) - VIOLATIONS_SHOWN} more")
    return "; ".join(lines)


# `data.Source` of a drift event derived from a v2 model monitor run (shared/monitoring.py).
MODEL_MONITOR_SOURCE = "v2-model-monitor"

EVENT_CLASSES: dict[str, type[AmlEvent]] = {
    f"Microsoft.MachineLearningServices.{cls.__name__}": cls
    for cls in (RunCompleted, RunStatusChanged, ModelRegistered, ModelDeployed, DatasetDriftDetected)
}


# ---- parsing -------------------------------------------------------------------------------------


def _normalise_field(key: str, kind: str, value: Any, required: bool) -> Any:
    where = f"data.{key}"
    if value is None:
        if required:
            raise EventRejected(where, "is required for this event type but missing or null")
        return {} if kind == "object" else [] if kind in ("idlist", "rows") else None
    if kind == "rows":
        if not isinstance(value, list) or not all(isinstance(row, Mapping) for row in value):
            raise EventRejected(where, "must be a list of objects")
        return [dict(row) for row in value]
    if kind == "object":
        if not isinstance(value, Mapping):
            raise EventRejected(where, f"must be an object, got {type(value).__name__}")
        return dict(value)
    if kind == "number":
        if isinstance(value, bool):
            raise EventRejected(where, "must be a number, got bool")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise EventRejected(where, f"must be a number, got {value!r:.60}") from None
    # Strings; numbers are accepted where the docs say string (ModelVersion arrives as 7).
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise EventRejected(where, f"must be a string, got {type(value).__name__}")
    text = str(value).strip()
    if kind == "status":
        return _RUN_STATUS_BY_LOWER.get(text.lower(), text)
    if kind == "idlist":
        return [part.strip() for part in text.split(",") if part.strip()]
    if required and not text:
        raise EventRejected(where, "is required for this event type but empty")
    return text


def _text(envelope: Mapping[str, Any], *names: str, required: bool = True) -> str:
    for name in names:
        value = envelope.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise EventRejected(name, f"must be a string, got {type(value).__name__}")
        if value.strip():
            return value.strip()
    if required:
        raise EventRejected(names[0], "is missing")
    return ""


def _event_time(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise EventRejected("eventTime", f"must be an ISO 8601 string, got {type(value).__name__}")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise EventRejected("eventTime", f"is not an ISO 8601 time: {value!r:.60}") from None


def parse_event(raw: Any) -> AmlEvent:
    """One event, from a `func.EventGridEvent`, a `func.CloudEvent` or a decoded JSON object."""
    envelope = _envelope(raw)
    event_id = None
    try:
        event_id = _text(envelope, "id")
        return _build(envelope, event_id)
    except EventRejected as rejected:
        rejected.event_id = event_id
        raise


def _envelope(raw: Any) -> Mapping[str, Any]:
    """Both schemas and the Functions binding types, as one Event Grid-shaped mapping."""
    if isinstance(raw, Mapping):
        if "specversion" in raw:  # CloudEvents 1.0
            return {
                "id": raw.get("id"),
                "eventType": raw.get("type"),
                "topic": raw.get("source"),
                "subject": raw.get("subject"),
                "eventTime": raw.get("time"),
                "data": raw.get("data"),
                "dataVersion": raw.get("dataversion"),
                "_schema": "CloudEvents",
            }
        return {**raw, "_schema": "EventGrid"}
    if hasattr(raw, "specversion"):  # func.CloudEvent
        return {
            "id": raw.id,
            "eventType": raw.type,
            "topic": raw.source,
            "subject": raw.subject,
            "eventTime": raw.time,
            "data": raw.get_json(),
            "_schema": "CloudEvents",
        }
    if hasattr(raw, "event_type"):  # func.EventGridEvent
        return {
            "id": raw.id,
            "eventType": raw.event_type,
            "topic": raw.topic,
            "subject": raw.subject,
            "eventTime": raw.event_time,
            "data": raw.get_json(),
            "dataVersion": raw.data_version,
            "_schema": "EventGrid",
        }
    raise EventRejected("", f"an event must be a JSON object, got {type(raw).__name__}")


def _build(envelope: Mapping[str, Any], event_id: str) -> AmlEvent:
    schema = envelope["_schema"]
    type_key = "type" if schema == "CloudEvents" else "eventType"
    topic_key = "source" if schema == "CloudEvents" else "topic"
    written_type = _text(envelope, "eventType")
    event_type = full_event_type(written_type)
    if event_type is None:
        raise EventRejected(type_key, f"{written_type!r} is not an Azure ML event type this app takes")
    topic = _text(envelope, "topic")
    try:
        workspace = Workspace.from_resource_id(topic)
    except ValueError as error:
        raise EventRejected(topic_key, f"{topic!r:.200} {error}") from None
    data = envelope.get("data")
    if isinstance(data, (str, bytes)):  # some senders double-encode data
        try:
            data = json.loads(data)
        except ValueError:
            raise EventRejected("data", "is a string that is not JSON") from None
    if not isinstance(data, Mapping):
        raise EventRejected("data", f"must be an object, got {type(data).__name__}")
    cls = EVENT_CLASSES[event_type]
    if cls is DatasetDriftDetected and get_ci(data, "Source") == MODEL_MONITOR_SOURCE:
        cls = ModelMonitorDrift  # a derived signal read back (digest members, replayed output)
    fields = {
        attribute: _normalise_field(key, kind, get_ci(data, key), required)
        for attribute, key, kind, required in cls.FIELDS
    }
    normalised = dict(data)
    if "run_status" in fields:  # `failed` -> `Failed` in the data that routes and templates see
        for key in data:
            if key.lower() == "runstatus":
                normalised[key] = fields["run_status"]
    data_version = envelope.get("dataVersion")
    return cls(
        id=event_id,
        event_type=event_type,
        subject=_text(envelope, "subject", required=False),
        topic=workspace.resource_id,
        event_time=_event_time(envelope.get("eventTime")),
        data=normalised,
        data_version=data_version if isinstance(data_version, str) else "",
        schema=schema,
        workspace=workspace,
        fields=fields,
    )


# ---- payloads (a delivery body, a file, a dead-letter blob) ---------------------------------------


@dataclass(frozen=True)
class RejectedInput:
    """A payload element that could not be parsed into an event."""

    reason: str
    raw: Any
    event_id: str | None = None
    event_type: str | None = None


def parse_payload(body: bytes | str) -> Iterator[AmlEvent | RejectedInput]:
    """Every event in a JSON body holding one event or an array; bad elements become RejectedInput."""
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError as error:
            yield RejectedInput(f"payload is not UTF-8 text ({error.reason} at byte {error.start})", body)
            return
    try:
        decoded = json.loads(body)
    except (ValueError, RecursionError) as error:
        yield RejectedInput(f"payload is not JSON: {error}", body)
        return
    for item in decoded if isinstance(decoded, list) else [decoded]:
        yield parse_or_reject(item)


def parse_or_reject(item: Any) -> AmlEvent | RejectedInput:
    try:
        return parse_event(item)
    except EventRejected as rejected:
        event_type = item.get("eventType") or item.get("type") if isinstance(item, Mapping) else None
        return RejectedInput(
            str(rejected), item, rejected.event_id, event_type if isinstance(event_type, str) else None
        )
