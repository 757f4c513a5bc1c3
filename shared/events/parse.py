"""Parsing delivered events, in either Event Grid schema or CloudEvents 1.0, into the typed model
(shared/events/model.py): every field normalised once, here. Anything that cannot be understood raises
`EventRejected` naming the field; callers record it and return normally (a poison event must not be
redelivered by Event Grid for 24 hours)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from shared.events.catalog import full_event_type
from shared.events.model import (
    EVENT_CLASSES,
    MAX_ID_CHARS,
    MODEL_MONITOR_SOURCE,
    RUN_STATUSES,
    AmlEvent,
    DatasetDriftDetected,
    EventRejected,
    ModelMonitorDrift,
    get_ci,
)
from shared.events.sources import SOURCE_EVENT_CLASSES
from shared.events.workspace import Workspace

_RUN_STATUS_BY_LOWER = {status.lower(): status for status in RUN_STATUSES} | {"cancelled": "Canceled"}


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
            number = float(value)
        except (TypeError, ValueError):
            raise EventRejected(where, f"must be a number, got {value!r:.60}") from None
        if not math.isfinite(number):  # NaN and Infinity are not JSON: no body could carry them
            raise EventRejected(where, f"must be a finite number, got {value!r:.60}")
        return number
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


def _event_id(envelope: Mapping[str, Any]) -> str:
    """The id exactly as sent (" ws-1 " and "ws-1" are different events); not blank, not huge."""
    value = envelope.get("id")
    if value is None or (isinstance(value, str) and not value.strip()):
        raise EventRejected("id", "is missing")
    if not isinstance(value, str):
        raise EventRejected("id", f"must be a string, got {type(value).__name__}")
    if len(value) > MAX_ID_CHARS:
        raise EventRejected("id", f"is {len(value):,} characters long; at most {MAX_ID_CHARS:,} are accepted")
    return value


def _event_time(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, (str, datetime)):
        raise EventRejected("eventTime", f"must be an ISO 8601 string, got {type(value).__name__}")
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    except ValueError:
        raise EventRejected("eventTime", f"is not an ISO 8601 time: {value!r:.60}") from None
    try:  # every reader converts to UTC: a time at the calendar's edge must not fail each of them
        moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC).astimezone(UTC)
    except OverflowError:
        raise EventRejected("eventTime", f"is out of range once converted to UTC: {value!s:.60}") from None
    return moment


def parse_event(raw: Any) -> AmlEvent:
    """One event, from a `func.EventGridEvent`, a `func.CloudEvent` or a decoded JSON object."""
    envelope = _envelope(raw)
    event_id = None
    try:
        event_id = _event_id(envelope)
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
        raise EventRejected(type_key, f"{written_type!r} is not an event type this app takes")
    topic = _text(envelope, "topic")
    subject = _text(envelope, "subject", required=False)
    data = envelope.get("data")
    if isinstance(data, (str, bytes)):  # some senders double-encode data
        try:
            data = json.loads(data)
        except ValueError:
            raise EventRejected("data", "is a string that is not JSON") from None
    if not isinstance(data, Mapping):
        raise EventRejected("data", f"must be an object, got {type(data).__name__}")
    source_class = SOURCE_EVENT_CLASSES.get(event_type)
    if source_class is not None:
        try:
            workspace, fields, normalised = source_class.read(topic, subject, data)
        except EventRejected as rejected:
            if rejected.field != "topic":
                raise
            raise EventRejected(topic_key, rejected.problem) from None
        return _event(source_class, envelope, event_id, event_type, topic, subject, workspace, fields, normalised)
    try:
        workspace = Workspace.from_resource_id(topic)
    except ValueError as error:
        raise EventRejected(topic_key, f"{topic!r:.200} {error}") from None
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
    return _event(cls, envelope, event_id, event_type, workspace.resource_id, subject, workspace, fields, normalised)


def _event(
    cls: type[AmlEvent],
    envelope: Mapping[str, Any],
    event_id: str,
    event_type: str,
    topic: str,
    subject: str,
    workspace: Workspace | None,
    fields: dict[str, Any],
    data: dict[str, Any],
) -> AmlEvent:
    data_version = envelope.get("dataVersion")
    return cls(
        id=event_id,
        event_type=event_type,
        subject=subject,
        topic=topic,
        event_time=_event_time(envelope.get("eventTime")),
        data=data,
        data_version=data_version if isinstance(data_version, str) else "",
        schema=envelope["_schema"],
        workspace=workspace,
        fields=fields,
    )


# ---- a rejected input, as it is recorded ------------------------------------------------------------


def written_event_type(raw: Any) -> str | None:
    """The event type a rejected input claims to be, for the record (it may be no known type)."""
    if isinstance(raw, Mapping):
        written = raw.get("eventType") or raw.get("type")
    else:
        written = getattr(raw, "event_type", None) or getattr(raw, "type", None)
    return written[:200] if isinstance(written, str) else None


def raw_for_record(raw: Any) -> Any:
    """What a rejected input looked like, in a form the ledger can store."""
    if hasattr(raw, "get_json"):
        try:
            data = raw.get_json()
        except ValueError:
            data = None
        names = ("id", "topic", "subject", "event_type", "type", "source", "data_version")
        return {**{name: str(getattr(raw, name, None)) for name in names if hasattr(raw, name)}, "data": data}
    return raw


def envelope_problem(item: Any) -> EventRejected:
    """Why no function takes this JSON item: the first thing wrong with its envelope, named truly."""
    if not isinstance(item, Mapping):
        return EventRejected("", f"an event must be a JSON object with eventType (or type), got {type(item).__name__}")
    event_id = item.get("id") if isinstance(item.get("id"), str) else None
    miscased = [key for key in item if isinstance(key, str) and key.lower() == "specversion" and key != "specversion"]
    if miscased and "specversion" not in item:
        return EventRejected(
            miscased[0], "CloudEvents attribute names are lower case: write 'specversion' (as sent, the event is"
            " neither a CloudEvent nor an Event Grid event)", event_id,
        )  # fmt: skip
    type_key = "type" if "specversion" in item else "eventType"
    written = item.get(type_key)
    if written is None:
        hint = " (a CloudEvent also needs 'specversion')" if "type" in item and type_key == "eventType" else ""
        return EventRejected(type_key, f"is missing{hint}", event_id)
    if not isinstance(written, str):
        return EventRejected(type_key, f"must be a string, got {type(written).__name__}", event_id)
    return EventRejected(type_key, f"{written!r:.200} is not an event type any function of this app takes", event_id)
