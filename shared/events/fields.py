"""The fields each event type has, read from the typed event classes: the fields reference
(docs/fields.md, written by scripts/fields_doc.py) and the check of paths in routes.yaml (`when:`,
`group.by`, silences' `--when`), so `data.ExperimentNme` is reported instead of never matching.
"""

from __future__ import annotations

import difflib

from shared.events.catalog import short_event_type
from shared.events.model import EVENT_CLASSES, AmlEvent
from shared.events.sources import SOURCE_EVENT_CLASSES

#: how each field kind of `AmlEvent.FIELDS` reads in the reference
KIND_TEXT = {
    "str": "text",
    "status": "text: a run status in its documented spelling (`failed` arrives as `Failed`)",
    "version": "text (Azure sends a number or a string)",
    "object": "map (free-form: `.<key>` reads one entry)",
    "idlist": "list of text (Azure sends one comma-separated string)",
    "number": "number (Azure may send a string)",
    "rows": "list of objects",
}

#: what each `data` key means, by the key as Azure spells it; a test requires one for every field
MEANING = {
    "experimentId": "the experiment's id",
    "experimentName": "the experiment's name",
    "runId": "the run's id (its name in studio)",
    "runType": "`azureml.PipelineRun`, `azureml.StepRun`, `azureml.scriptrun`, …; may be null",
    "runTags": "the run's tags (Azure ML's own keys contain dots: `azureml.pipelineid`)",
    "runProperties": "the run's properties (`azureml.runsource`, …)",
    "runStatus": "the status the run moved to",
    "ModelName": "the registered model's name",
    "ModelVersion": "its version",
    "ModelTags": "the model version's tags",
    "ModelProperties": "the model version's properties",
    "ServiceName": "the endpoint or service deployed to",
    "ServiceComputeType": "`AKS`, `ACI`, `Managed`, …",
    "ModelIds": "the deployed models, `name:version` each",
    "ServiceTags": "the service's tags",
    "ServiceProperties": "the service's properties",
    "DataDriftId": "the drift monitor's id",
    "DataDriftName": "the drift monitor's name",
    "RunId": "the monitor run that found the drift",
    "BaseDatasetId": "the baseline dataset",
    "TargetDatasetId": "the dataset compared with it",
    "DriftCoefficient": "how much the data drifted, 0 to 1",
    "StartTime": "the start of the compared window",
    "EndTime": "its end",
    "SignalName": "the model monitor signal that breached",
    "Monitor": "the model monitor's name",
    "Violations": "the metrics over their thresholds (group, metric_name, metric_value, threshold_value)",
    "Source": "`v2-model-monitor`: the event was derived from a monitor's failed signal run",
    # blob storage (docs/event-sources.md)
    "account": "the storage account (added by the app, from the topic)",
    "container": "the blob's container (added by the app, from the subject)",
    "blobPath": "the blob's path in its container (added by the app, from the subject)",
    "folder": "the blob's folder, ending in `/`, or empty at the container's root (added by the app)",
    "datastore": "the Azure ML datastore the DATASTORES setting maps the container to (added by the app)",
    "contentLength": "the blob's size in bytes (none on BlobDeleted)",
    "contentType": "the blob's content type",
    "eTag": "the blob's ETag",
    "blobType": "`BlockBlob`, `PageBlob` or `AppendBlob`",
    "api": "the storage operation: `PutBlob`, `PutBlockList`, `CopyBlob`, `FlushWithClose`, `DeleteBlob`, …",
    "url": "the blob's URL (percent-encoded; the `dfs` endpoint on Data Lake accounts)",
    "sequencer": "orders the events of one blob",
    "contentOffset": "Data Lake: the offset of the write",
    "clientRequestId": "the caller's request id",
    "requestId": "the storage service's request id",
    "storageDiagnostics": "diagnostics for Microsoft support",
    # Azure Policy
    "complianceState": "`Compliant`, `NonCompliant`, `Conflict`, `Exempt`, … (documented spelling, any case in)",
    "policyAssignmentId": "the policy assignment's id",
    "policyDefinitionId": "the policy definition's id",
    "policyDefinitionReferenceId": "the definition's reference id inside an initiative; may be empty",
    "complianceReasonCode": "the compliance reason code; may be empty",
    "timestamp": "when Azure Policy evaluated the resource (order by this)",
    "subscriptionId": "the resource's subscription",
    "resourceId": "the resource the state is about (added by the app, from the subject)",
    "resourceType": "the resource's type, e.g. `Microsoft.MachineLearningServices/workspaces/computes` (added)",
    "policyAssignmentName": "the assignment's name: the last segment of its id (added by the app)",
    "policyDefinitionName": "the definition's name: the last segment of its id, a GUID for built-ins (added)",
    # Resource Manager
    "operationName": "the operation, e.g. `Microsoft.MachineLearningServices/workspaces/onlineEndpoints/write`",
    "resourceUri": "the resource operated on",
    "resourceProvider": "the resource provider, e.g. `Microsoft.MachineLearningServices`",
    "status": "the status the payload gives (samples carry `Succeeded` on failures: use `outcome`)",
    "correlationId": "finds the operation in the activity log",
    "authorization": "the authorization checked (scope, action, evidence)",
    "httpRequest": "the request (method, url, client request id)",
    "tenantId": "the tenant",
    "resourceGroup": "the resource group",
    "outcome": "`Succeeded`, `Failed` or `Canceled`, from the event type (added by the app)",
    "caller": "who started it: a user's sign-in name, or `application <appid>` (added, from the claims)",
    "errorCode": "the error code, where the payload has one (added by the app)",
    "errorMessage": "the error message, where the payload has one (added by the app)",
}

#: the envelope: on every event, read by conditions as `<path>` and by templates as `event.<name>`
ENVELOPE = (
    ("id", "id", "the event's id (unique per event; Event Grid redelivers with the same id)"),
    ("eventType", "eventType", "the full type, e.g. Microsoft.MachineLearningServices.RunStatusChanged"),
    ("subject", "subject", "what the event is about, e.g. experiments/<id>/runs/<run>"),
    (
        "topic",
        "topic",
        "the workspace's resource id (`source` in CloudEvents); for blob, policy and resource events "
        "the storage account, subscription or resource group",
    ),
    ("dataVersion", "dataVersion", "the schema version of `data` (often empty)"),
)

#: what a route with `enrich: true` adds (shared/events/enrichment.py): `run.<field>`, `model.<field>`
ENRICHED = {
    "run": (
        ("id", "text", "the run's id"),
        ("status", "text", "its status now"),
        ("start_time", "text", "when it started (ISO 8601, UTC)"),
        ("end_time", "text", "when it ended"),
        ("duration_seconds", "number", "how long it ran"),
        ("duration", "text", "the same as `2h 3m 4s`"),
        ("error", "text", "the error message of a failed run"),
        ("error_code", "text", "its code"),
        ("tags", "map", "the run's tags"),
        ("properties", "map", "the run's properties"),
        ("metrics", "map", "its logged metrics, latest value each: `run.metrics.accuracy`"),
        ("params", "map", "its logged parameters"),
    ),
    "model": (
        ("name", "text", "the model's name"),
        ("version", "text", "its version"),
        ("description", "text", "its description"),
        ("job_name", "text", "the run that produced it"),
        ("tags", "map", "the version's tags"),
        ("properties", "map", "its properties"),
        ("metrics", "map", "the producing run's metrics"),
        ("run", "map", "the producing run's details, as `run.*` above"),
    ),
}


def event_classes() -> dict[str, type[AmlEvent]]:
    """Every event type by its short name, with the derived ones (a v2 model monitor's drift signal);
    the blob, policy and resource events by family (each family's types share their fields)."""
    from shared.events.model import ModelMonitorDrift

    classes = {short_event_type(name): cls for name, cls in EVENT_CLASSES.items()}
    classes["DatasetDriftDetected (v2 model monitor)"] = ModelMonitorDrift
    families: dict[type[AmlEvent], list[str]] = {}
    for name, cls in SOURCE_EVENT_CLASSES.items():
        families.setdefault(cls.__mro__[1], []).append(short_event_type(name))
    for family, names in families.items():
        classes[", ".join(names) if len(names) <= 3 else f"{names[0]} … {names[-1]} ({len(names)} types)"] = family
    return classes


def _data_keys(event_type: str) -> dict[str, tuple[str, str]]:
    """lower-case key -> (key as Azure spells it, kind), including the derived variants of the type."""
    if event_type in SOURCE_EVENT_CLASSES:
        return {key.lower(): (key, kind) for _, key, kind, _ in SOURCE_EVENT_CLASSES[event_type].FIELDS}
    classes = [EVENT_CLASSES[event_type]]
    classes += [cls for cls in event_classes().values() if cls not in classes and issubclass(cls, classes[0])]
    return {key.lower(): (key, kind) for cls in classes for _, key, kind, _ in cls.FIELDS}


def path_problem(path: str, event_types: tuple[str, ...]) -> str | None:
    """Why no event of the route's types has `path` (a `data.` path), or None. Free-form maps (tags,
    properties) take any key below them; other roots are checked elsewhere."""
    root, _, rest = path.partition(".")
    if root.lower() != "data" or not rest or not event_types:
        return None
    if any(event_type not in EVENT_CLASSES and event_type not in SOURCE_EVENT_CLASSES for event_type in event_types):
        return None  # a synthetic event (ExpectationMissed) carries another event's data: any key may be there
    key, _, below = rest.partition(".")
    known: dict[str, tuple[str, str]] = {}
    for event_type in event_types:
        known.update(_data_keys(event_type))
    found = known.get(key.lower())
    if found is not None:
        if below and found[1] not in ("object", "rows"):
            return f"{path}: data.{found[0]} is a single value, it has no `.{below}`"
        return None
    types = ", ".join(short_event_type(event_type) for event_type in event_types)
    spelled = sorted({spelling for spelling, _ in known.values()})
    close = difflib.get_close_matches(key.lower(), list(known), n=1, cutoff=0.6)
    hint = f"did you mean data.{known[close[0]][0]}? " if close else ""
    return f"{path}: {types} events have no such field ({hint}they have: {', '.join(spelled)}; see docs/fields.md)"
