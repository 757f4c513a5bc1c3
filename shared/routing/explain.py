"""Why a route takes an event or not, for people: `replay.py --explain`, `scripts/test_routes.py` and
the preview page say it with the first condition that failed and the value the event had
(`data.ExperimentName: 'dev-churn' does not start with 'prod-'`), then what the gate would do and
which actions would run.

Nothing here writes: the gate is described from the route's options (and, when a silence store is
given, the silences active now), never asked to reserve a repeat or add to a group.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.events.catalog import short_event_type
from shared.events.model import AmlEvent
from shared.routing.conditions import _MISSING, NUMERIC_OPERATORS, Condition, as_number, event_view, resolve
from shared.routing.routes import Route, RouteTable

_VERB = {
    "equals": "is not",
    "in": "is not one of",
    "not_in": "is one of",
    "startswith": "does not start with",
    "endswith": "does not end with",
    "contains": "does not contain",
    "matches": "does not match",
    "gt": "is not >",
    "gte": "is not >=",
    "lt": "is not <",
    "lte": "is not <=",
}
_SHOWN = 80  # characters of an event's value shown in a reason: event data is untrusted and unbounded


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


def _operand(condition: Condition) -> str:
    if condition.op in ("in", "not_in"):
        return ", ".join(str(item) for item in condition.value)
    if condition.op == "matches":
        return f"/{condition.value}/"
    if condition.op in NUMERIC_OPERATORS:
        return f"{condition.value:g}"
    return repr(condition.value)


def failure(condition: Condition, view: Mapping[str, Any]) -> str | None:
    """Why `condition` does not hold for the event `view`, with the value found; None when it holds."""
    if condition.holds(view):
        return None
    actual = resolve(view, condition.path)
    if condition.op == "exists":
        found = "missing" if actual is _MISSING else f"present ({_shown(actual)})"
        return f"{condition.path}: {found}, the route wants it {'present' if condition.value else 'absent'}"
    if actual is _MISSING:
        return f"{condition.path}: missing (the event has no such field, or it is null)"
    if condition.op in NUMERIC_OPERATORS and as_number(actual) is None:
        return f"{condition.path}: {_shown(actual)} is not a number ({condition.op} {_operand(condition)})"
    if isinstance(actual, list) and condition.op not in NUMERIC_OPERATORS:
        return f"{condition.path}: no item of {_shown(actual)} passes ({_VERB[condition.op]} {_operand(condition)})"
    return f"{condition.path}: {_shown(actual)} {_VERB[condition.op]} {_operand(condition)}"


@dataclass(frozen=True)
class Explanation:
    """One route's answer for one event."""

    route: str
    matched: bool
    reason: str  # why not (when not matched); for a match, "" or what is decided later
    gate: tuple[str, ...] = ()  # what the gate would do, for a matched route
    actions: tuple[str, ...] = ()  # "email#1 -> mlops@contoso.com", for a matched route
    other_type: bool = False  # the route takes other event types: not worth a line of its own

    def lines(self) -> list[str]:
        if not self.matched:
            return [f"{self.route}: not matched: {self.reason}"]
        head = f"{self.route}: matched" + (f" ({self.reason})" if self.reason else "")
        return [head, *(f"  gate: {line}" for line in self.gate), *(f"  action {line}" for line in self.actions)]

    def to_dict(self) -> dict[str, Any]:
        return {"route": self.route, "matched": self.matched, "reason": self.reason,
                "gate": list(self.gate), "actions": list(self.actions)}  # fmt: skip


#: the silence (its description) covering a route for an event view, or None; see `explain`
SilenceLookup = Callable[[str, Mapping[str, Any]], str | None]


def explain_route(
    route: Route, event: AmlEvent, view: Mapping[str, Any] | None = None, silence: SilenceLookup | None = None
) -> Explanation:
    view = event_view(event) if view is None else view
    if event.event_type not in route.event_types:
        takes = ", ".join(short_event_type(event_type) for event_type in route.event_types)
        return Explanation(route.name, False, f"takes {takes}, not {event.short_type}", other_type=True)
    for condition in route.conditions:
        if condition.enriched:
            continue
        if (why := failure(condition, view)) is not None:
            return Explanation(route.name, False, why + ("" if route.enabled else "; the route is also disabled"))
    if not route.enabled:
        return Explanation(route.name, False, "disabled (`enabled: false`); its conditions hold")
    later = [f"{c.path} {c.op} {_operand(c)}" for c in route.conditions if c.enriched]
    reason = f"then only if the fetched details pass: {'; '.join(later)}" if later else ""
    actions = tuple(f"{action.kind}#{action.position} -> {action.target or '-'}" for action in route.actions)
    return Explanation(route.name, True, reason, describe_gate(route, view, silence), actions)


def explain(table: RouteTable, event: AmlEvent, silence: SilenceLookup | None = None) -> list[Explanation]:
    """Every route of the table, in order, for one event."""
    view = event_view(event)
    return [explain_route(route, event, view, silence) for route in table.routes]


_REASON_MAX = 300  # characters of an unrouted event's reason in its report and log line


def unrouted_reason(table: RouteTable, event: AmlEvent) -> str:
    """Why no route takes the event, for its report and log line: each route for its type and the
    first condition that failed (bounded); routes for other types are not listed."""
    misses = [explanation for explanation in explain(table, event) if not explanation.other_type]
    if not misses:
        return f"no route takes {event.short_type} events"
    text = "no route matches: " + "; ".join(f"{miss.route}: {miss.reason}" for miss in misses)
    return text if len(text) <= _REASON_MAX else text[: _REASON_MAX - 1] + "…"


def event_lines(event: AmlEvent, explanations: list[Explanation]) -> list[str]:
    """An event's explanation as `replay.py --explain` prints it: the routes for its type one by one,
    the routes for other types on one line."""
    lines = [f"{event.short_type} {event.id}: {event.title}"]
    for explanation in explanations:
        if not explanation.other_type:
            lines += [f"  {line}" for line in explanation.lines()]
    others = [explanation.route for explanation in explanations if explanation.other_type]
    if others:
        lines.append(f"  not for {event.short_type} events: {', '.join(others)}")
    if not any(explanation.matched for explanation in explanations):
        lines.append("  => no route takes it: nothing would be sent")
    return lines


def describe_gate(
    route: Route, view: Mapping[str, Any], silence: SilenceLookup | None = None, at: datetime | None = None
) -> tuple[str, ...]:
    """What the gate does for this route, in its order: silence, mute, repeat_interval, group."""
    noise = route.noise
    lines = []
    if silence is not None:
        covering = silence(route.name, view)
        lines.append(f"silenced now: {covering} (actions skipped)" if covering else "no active silence")
    if noise.mutes:
        from shared.platform.clock import now
        from shared.routing.mutes import muting_window

        window = muting_window(noise.mutes, at or now())
        lines.append(
            f"muted now: window {window.written} ({window.timezone}) (actions skipped)"
            if window
            else f"{len(noise.mutes)} mute window(s), none covering now"
        )
    if noise.repeat_interval is not None:
        key = "its key template" if noise.repeat_key is not None else "the event's subject"
        lines.append(f"repeat_interval {_duration(noise.repeat_interval)}: skipped if {key} notified within it")
    if noise.group is not None:
        by = ", ".join(noise.group.by) or "the route"
        values = ", ".join(f"{path}={_shown(resolve(view, path)) if resolve(view, path) is not _MISSING else '-'}"
                           for path in noise.group.by)  # fmt: skip
        lines.append(
            f"grouped by {by}" + (f" ({values})" if values else "")
            + f": held for a digest sent {_duration(noise.group.wait)} after the group's first event"
        )  # fmt: skip
    if not lines:
        lines.append("no silence, mute, repeat_interval or group: acts at once")
    return tuple(lines)
