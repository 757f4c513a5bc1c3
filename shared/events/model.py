"""Typed Azure ML events: `AmlEvent` and one subclass per event type, each with its `data` fields (as
shared/events/parse.py normalises them) and how it reads (`title`, `facts`, `studio_url`), which
messages, templates and conditions use.

Over 300 lines because it is one table of event types: keeping each type's fields beside its
presentation means adding or changing an event type is one class in one place.

Real payloads differ from the documentation (key casing, ModelVersion as a number, `runType: null`,
`failed` in lower case, an empty `dataVersion`), so every `data` lookup is case-insensitive (`get_ci`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from shared.events.catalog import FUNCTION_FOR_EVENT_TYPE, short_event_type
from shared.events.workspace import Workspace, portal_url

# AML run-history statuses in their documented spelling (azure-ai-ml JobStatus).
RUN_STATUSES = (
    "NotStarted", "Starting", "Provisioning", "Preparing", "Queued", "Running", "Finalizing",
    "CancelRequested", "Completed", "Failed", "Canceled", "NotResponding", "Paused", "Unknown",
)  # fmt: skip


class EventRejected(ValueError):
    """An event that cannot be understood. `field` names the offending part of the payload."""

    def __init__(self, field: str, problem: str, event_id: str | None = None) -> None:
        self.field = field
        self.problem = problem
        self.event_id = event_id
        super().__init__(f"{field}: {problem}" if field else problem)


def status_words(status: str) -> str:
    """A status as words for titles and subjects: `NotStarted` -> `not started`, `CancelRequested` ->
    `cancel requested` (a word starts at each capital that follows a lower-case letter)."""
    return _WORD_START.sub(" ", status).lower()


_WORD_START = re.compile(r"(?<=[a-z])(?=[A-Z])")


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
    # The Azure ML workspace: the topic of an Azure ML event; for an event from another source the
    # workspace it concerns, when one can be told (shared/events/arm.py), else None.
    workspace: Workspace | None
    fields: Mapping[str, Any] = field(default_factory=dict)  # the typed, normalised data fields
    # Details fetched from the workspace for a route with `enrich: true` (shared/events/enrichment.py).
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
        return self.workspace.studio_url("") if self.workspace is not None else portal_url(self.topic)

    @property
    def scope(self) -> str:
        """Where the event happened, in a word: the workspace's name (a message's subject starts with it)."""
        return self.workspace.name if self.workspace is not None else self.topic.rsplit("/", 1)[-1]

    @property
    def title(self) -> str:
        return self.short_type

    def facts(self) -> list[tuple[str, str]]:
        """The facts a reader needs, as (label, value) pairs, most important first."""
        return [("Workspace", self.workspace.name)] if self.workspace is not None else []

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
            "workspace": self.workspace.to_dict() if self.workspace is not None else None,
            "studioUrl": self.studio_url,
            "title": self.title,
            "fields": {name: _plain(value) for name, value in self.fields.items()},
            "data": dict(self.data),
        }


def _plain(value: Any) -> Any:
    """A field as JSON-ready data: times in ISO 8601 (a policy state's `timestamp`)."""
    return value.isoformat() if isinstance(value, datetime) else value


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
        return f"Run {self.run_id} {status_words(self.status)}"

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
    """A v2 model monitor signal that breached its thresholds, as a drift event (shared/events/monitoring.py
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
        ("source", "Source", "str", False),  # always MODEL_MONITOR_SOURCE: how the parser tells it apart
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


# `data.Source` of a drift event derived from a v2 model monitor run (shared/events/monitoring.py).
MODEL_MONITOR_SOURCE = "v2-model-monitor"

EVENT_CLASSES: dict[str, type[AmlEvent]] = {
    f"Microsoft.MachineLearningServices.{cls.__name__}": cls
    for cls in (RunCompleted, RunStatusChanged, ModelRegistered, ModelDeployed, DatasetDriftDetected)
}
