"""Drift signals of v2 model monitors, derived from the run events the workspace still emits.

v2 monitors have no event type of their own. When a signal breaches its thresholds, the monitoring
component (azureml-assets, `evaluate_metrics_threshold`) tags the signal's run with
`azureml_modelmonitor_threshold_breached` and fails it, so the workspace sends a RunStatusChanged
(Failed) carrying the tag. The tag's text is the component's message, not a documented schema:

    The signal '<signal name>' has failed due to one or more features violating metric thresholds.
    The feature names and their corresponding computed metric values violating the threshold are
    ['{"group":"age","metric_value":0.41,"metric_name":"JensenShannonDistance","threshold_value":0.1}', …]

so it is read leniently: what cannot be read stays empty, and nothing here ever raises into the
handling of the run event it came from.
"""

from __future__ import annotations

import ast
import json
import logging
import re
from dataclasses import replace
from typing import Any

from shared.events.catalog import full_event_type
from shared.events.model import MODEL_MONITOR_SOURCE, AmlEvent, RunStatusChanged, get_ci
from shared.events.parse import parse_event

logger = logging.getLogger("aml_events.events.monitoring")

BREACH_TAG = "azureml_modelmonitor_threshold_breached"
# Appended to the run event's id: the derived signal has ledger records of its own, the same on
# every redelivery of the run event.
ID_SUFFIX = "/model-monitor"

_SIGNAL_NAME = re.compile(r"The signal '(.*)' has failed due to")
_JSON_OBJECT = re.compile(r"\{[^{}]*\}")
# Metrics that breach when they fall below the threshold (p-values, pass rates, accuracy: the
# component's `Metric_Value_Should_Greater_Than_Threshold`); every other metric breaches above it.
_BREACH_BELOW = frozenset({
    "TwoSampleKolmogorovSmirnovTest", "PearsonsChiSquaredTest", "NormalizedDiscountedCumulativeGain",
    "AggregatedCoherencePassRate", "AggregatedGroundednessPassRate", "AggregatedFluencyPassRate",
    "AggregatedSimilarityPassRate", "AggregatedRelevancePassRate", "Accuracy", "Precision", "Recall",
})  # fmt: skip


def derived_events(event: AmlEvent) -> list[AmlEvent]:
    """The events to route besides `event`: a drift signal when it is a breached v2 monitor signal."""
    if not isinstance(event, RunStatusChanged) or event.run_status != "Failed":
        return []
    message = get_ci(event.run_tags, BREACH_TAG)
    if not isinstance(message, str) or not message.strip():
        return []
    try:
        return [model_monitor_drift(event, message)]
    except Exception:  # a bug here must not cost the run event its own routes
        logger.exception("model monitor signal of event %s not derived", event.id)
        return []


def model_monitor_drift(event: RunStatusChanged, message: str) -> AmlEvent:
    """The drift event for a breached signal run. DataDriftId is the run's experiment (the monitor's
    jobs), or the run id when the event names no experiment; DataDriftName is the signal."""
    signal = signal_name(message)
    violations = breached_rows(message)
    monitor = event.experiment_name or event.experiment_id
    distances = [row["metric_value"] for row in violations
                 if row["metric_value"] is not None and row["metric_name"] not in _BREACH_BELOW]  # fmt: skip
    data = {
        "DataDriftId": monitor or event.run_id,
        "DataDriftName": signal or monitor or event.run_id,
        "RunId": event.run_id,
        "DriftCoefficient": max(distances) if distances else None,
        "Source": MODEL_MONITOR_SOURCE,
        "SignalName": signal,
        "Monitor": monitor,
        "Violations": violations,
    }
    derived = parse_event({
        "id": event.id + ID_SUFFIX,
        "eventType": full_event_type("DatasetDriftDetected"),
        "topic": event.topic,
        "subject": event.subject,
        "eventTime": event.event_time,
        "dataVersion": event.data_version,
        "data": data,
    })  # fmt: skip
    return replace(derived, schema=event.schema)


def signal_name(message: str) -> str | None:
    found = _SIGNAL_NAME.search(message)
    return (found.group(1).strip() or None) if found else None


def breached_rows(message: str) -> list[dict[str, Any]]:
    """The rows the message lists that breach their threshold. Older component versions listed every
    evaluated row; rows whose values are missing are kept (the monitor counted them)."""
    rows = [_row(item) for item in _listed_objects(message)]
    return [row for row in rows if row is not None and _breaches(row)]


def _listed_objects(message: str) -> list[Any]:
    """The JSON objects after the message's sentences: a Python list of JSON strings, or, when that
    does not parse (e.g. a tag cut short), each complete `{…}` found in the text."""
    start, end = message.find("["), message.rfind("]")
    if 0 <= start < end:
        try:
            listed = ast.literal_eval(message[start : end + 1])
            if isinstance(listed, list):
                return [_json(item) for item in listed]
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            pass
    return [_json(found) for found in _JSON_OBJECT.findall(message)]


def _json(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return None


def _row(item: Any) -> dict[str, Any] | None:
    if not isinstance(item, dict):
        return None
    name = get_ci(item, "metric_name")
    group = get_ci(item, "group")
    return {
        "group": None if group is None else str(group),
        "metric_name": None if name is None else str(name),
        "metric_value": _number(get_ci(item, "metric_value")),
        "threshold_value": _number(get_ci(item, "threshold_value")),
    }


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _breaches(row: dict[str, Any]) -> bool:
    value, threshold = row["metric_value"], row["threshold_value"]
    if value is None or threshold is None:
        return True
    return value < threshold if row["metric_name"] in _BREACH_BELOW else value > threshold
