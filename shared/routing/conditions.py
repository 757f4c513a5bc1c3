"""`when:` conditions: a path into the event and an operator, evaluated as Event Grid filters are
(string comparisons ignore case; numbers compare as numbers even when the payload sends strings)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.events.model import AmlEvent, get_ci

OPERATORS = (
    "equals", "in", "not_in", "startswith", "endswith", "contains", "matches",
    "gt", "gte", "lt", "lte", "exists",
)  # fmt: skip
NUMERIC_OPERATORS = ("gt", "gte", "lt", "lte")

#: the first segment of a path -> what it reads from the event view
PATH_ROOTS = {"id": "id", "eventtype": "eventType", "type": "eventType", "subject": "subject",
              "topic": "topic", "source": "topic", "dataversion": "dataVersion", "data": "data",
              "run": "run", "model": "model"}  # fmt: skip
#: roots read from the details a route with `enrich: true` fetches, not from the event itself
ENRICHED_ROOTS = ("run", "model")

_MISSING = object()


def event_view(event: AmlEvent) -> dict[str, Any]:
    """What conditions see of an event (with `run`/`model` once a route enriched it)."""
    view = {
        "id": event.id,
        "eventType": event.event_type,
        "subject": event.subject,
        "topic": event.topic,
        "dataVersion": event.data_version,
        "data": event.data,
    }
    if event.enrichment is not None:
        view.update(event.enrichment.view())
    return view


def check_path(path: str) -> str | None:
    """A problem with a condition path, or None."""
    root, _, rest = path.partition(".")
    if root.lower() not in PATH_ROOTS:
        return (
            f"unknown path {path!r}: it must start with one of id, eventType, subject, topic, data.<Field>, "
            "or (with `enrich: true`) run.<field>, model.<field>"
        )
    if PATH_ROOTS[root.lower()] in ("data", *ENRICHED_ROOTS) and not rest:
        example = {"data": "data.RunStatus", "run": "run.metrics.accuracy", "model": "model.description"}
        return f"path {path!r} must name a field, e.g. {example[PATH_ROOTS[root.lower()]]}"
    return None


def resolve(view: Mapping[str, Any], path: str) -> Any:
    """The value at `path` (case-insensitive at every step), or _MISSING.

    Keys may hold dots themselves (Azure ML's own tags: `azureml.pipelineid`), so at each level the
    longest key that spells the next segments is tried first, then shorter ones:
    `data.RunTags.azureml.pipelineid` reaches `{"RunTags": {"azureml.pipelineid": ...}}` as well as
    `{"RunTags": {"azureml": {"pipelineid": ...}}}`."""
    root, *rest = path.split(".")
    value = _descend(view.get(PATH_ROOTS.get(root.lower(), root), _MISSING), rest, 0, set())
    return _MISSING if value is None else value


def _descend(value: Any, parts: list[str], start: int, dead_ends: set[tuple[int, int]]) -> Any:
    """`value` followed through parts[start:]; `dead_ends` keeps each (mapping, position) tried once,
    so a crafted payload costs at most len(parts)² lookups per mapping, never an exponential search."""
    if start == len(parts):
        return value
    if not isinstance(value, Mapping) or (id(value), start) in dead_ends:
        return _MISSING
    for end in range(len(parts), start, -1):
        found = get_ci(value, ".".join(parts[start:end]), _MISSING)
        if found is not _MISSING:
            result = _descend(found, parts, end, dead_ends)
            if result is not _MISSING:
                return result
    dead_ends.add((id(value), start))
    return _MISSING


def as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _equal(actual: Any, expected: Any) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return actual is expected or str(actual).lower() == str(expected).lower()
    left, right = as_number(actual), as_number(expected)
    if left is not None and right is not None:
        return left == right
    return str(actual).casefold() == str(expected).casefold()


@dataclass(frozen=True)
class Condition:
    path: str
    op: str
    value: Any
    line: int = 0

    @property
    def enriched(self) -> bool:
        """Reads fetched details (`run.*`, `model.*`): decided after enrichment, not at first match."""
        return self.path.partition(".")[0].lower() in ENRICHED_ROOTS

    def holds(self, view: Mapping[str, Any]) -> bool:
        actual = resolve(view, self.path)
        if self.op == "exists":
            return (actual is not _MISSING) == bool(self.value)
        if actual is _MISSING:
            return self.op == "not_in"  # as Event Grid's NotIn filters: a missing key matches
        if isinstance(actual, list) and self.op not in NUMERIC_OPERATORS:
            return any(self.holds_value(item) for item in actual)
        return self.holds_value(actual)

    def holds_value(self, actual: Any) -> bool:
        op, expected = self.op, self.value
        if op == "equals":
            return _equal(actual, expected)
        if op == "in":
            return any(_equal(actual, candidate) for candidate in expected)
        if op == "not_in":
            return not any(_equal(actual, candidate) for candidate in expected)
        if op in NUMERIC_OPERATORS:
            number = as_number(actual)
            if number is None:
                return False
            limit = float(expected)
            return {"gt": number > limit, "gte": number >= limit, "lt": number < limit, "lte": number <= limit}[op]
        text, operand = str(actual).casefold(), str(expected).casefold()
        if op == "startswith":
            return text.startswith(operand)
        if op == "endswith":
            return text.endswith(operand)
        if op == "contains":
            return operand in text
        if op == "matches":
            return re.search(expected, str(actual), re.IGNORECASE) is not None
        raise ValueError(f"unknown operator {op!r}")  # unreachable: operators are checked at load


def parse_conditions(path: str, spec: Any, line: int) -> tuple[list[Condition], list[str]]:
    """One `when:` entry -> its conditions, and the problems found (for the loader to report)."""
    problems: list[str] = []
    if (problem := check_path(path)) is not None:
        return [], [problem]
    if isinstance(spec, list):
        return [Condition(path, "in", list(spec), line)], problems
    if not isinstance(spec, Mapping):
        return [Condition(path, "equals", spec, line)], problems
    conditions = []
    for op, operand in spec.items():
        if op not in OPERATORS:
            problems.append(f"{path}: unknown operator {op!r} (use one of {', '.join(OPERATORS)})")
            continue
        if op in ("in", "not_in"):
            operand = list(operand) if isinstance(operand, list) else [operand]
        elif op in NUMERIC_OPERATORS and as_number(operand) is None:
            problems.append(f"{path}: {op} needs a number, got {operand!r}")
            continue
        elif op == "matches":
            try:
                re.compile(str(operand))
            except re.error as error:
                problems.append(f"{path}: bad regular expression {operand!r}: {error}")
                continue
            operand = str(operand)
        elif op == "exists" and not isinstance(operand, bool):
            problems.append(f"{path}: exists takes true or false, got {operand!r}")
            continue
        elif isinstance(operand, (Mapping, list)):
            problems.append(f"{path}: {op} takes a single value, got {type(operand).__name__}")
            continue
        conditions.append(Condition(path, op, as_number(operand) if op in NUMERIC_OPERATORS else operand, line))
    return conditions, problems
