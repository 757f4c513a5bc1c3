"""routes.yaml: the user's declaration of what should happen for which events.

Loading validates everything up front (keys, operators, regexes, action options, `${SETTING}`
references) and reports every problem with its line, so a broken file fails at deploy time with a
list to fix instead of one error at a time in production.

Over 300 lines because it is one thing: the route model and the one pass that checks a route's keys
against each other (`expect:` against `events`, `group` and `enrich`); each option's own parsing is in
its module (conditions, action_options, noise_options, expect_parse).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from shared.actions import Action, ActionKinds
from shared.events.catalog import KNOWN_EVENT_TYPES, full_event_type, short_event_type
from shared.events.enrichment import FETCHED_FOR
from shared.events.expectation import EXPECTATION_MISSED, EXPECTATION_RESOLVED_LATE
from shared.events.fields import path_problem
from shared.events.model import AmlEvent
from shared.events.sources import default_condition
from shared.problems import Problems
from shared.routing.action_options import RetryPolicy, parse_retry, pop_duration, substitute_settings
from shared.routing.conditions import Condition, event_view, parse_conditions
from shared.routing.noise_options import NOISE_KEYS, NoiseControl, parse_noise
from shared.routing.yamllimits import MAX_FILE_BYTES, LimitExceeded
from shared.routing.yamlsource import LineDict, LineList, load_yaml

if TYPE_CHECKING:
    from shared.routing.expect import Expectation

ROUTE_KEYS = ("name", "description", "events", "enabled", "when", "enrich", "actions", "expect", *NOISE_KEYS)
ROUTE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


@dataclass(frozen=True)
class RouteAction:
    position: int  # index in the route's `actions`, part of the ledger key
    kind: str
    action: Action
    line: int
    timeout: float | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    @property
    def target(self) -> str:
        return self.action.target


@dataclass(frozen=True)
class Route:
    name: str
    event_types: tuple[str, ...]
    conditions: tuple[Condition, ...]
    actions: tuple[RouteAction, ...]
    enabled: bool = True
    description: str = ""
    line: int = 0
    noise: NoiseControl = field(default_factory=NoiseControl)
    enrich: bool = False  # fetch run/model details before acting (shared/events/enrichment.py)
    # `expect:` (shared/routing/expect.py): the route's events open expectations; its actions run on
    # ExpectationMissed (and ExpectationResolvedLate) events only
    expect: Expectation | None = None

    def matches(self, event: AmlEvent, view: Mapping[str, Any] | None = None) -> bool:
        """The event's type and its own fields match; conditions on fetched details wait for them."""
        if not self.enabled or event.event_type not in self.event_types:
            return False
        view = event_view(event) if view is None else view
        return all(condition.holds(view) for condition in self.conditions if not condition.enriched)

    def matches_details(self, enriched: AmlEvent) -> bool:
        """The conditions on `run.*` / `model.*`, once the event carries its details. When they could
        not be fetched, the route acts: a failed fetch degrades the message, it does not drop it."""
        if enriched.enrichment is None or enriched.enrichment.problem:
            return True
        view = event_view(enriched)
        return all(condition.holds(view) for condition in self.conditions if condition.enriched)


@dataclass(frozen=True)
class RouteTable:
    source: str
    routes: tuple[Route, ...] = field(default_factory=tuple)
    #: problems in the actions of disabled routes (e.g. a setting not configured yet): not errors
    warnings: tuple[str, ...] = ()

    def matching(self, event: AmlEvent) -> list[Route]:
        """The routes that act on `event` itself (a route with `expect:` acts on missed expectations)."""
        view = event_view(event)
        return [route for route in self.routes if route.expect is None and route.matches(event, view)]

    @property
    def expecting(self) -> list[Route]:
        """The enabled routes with `expect:`."""
        return [route for route in self.routes if route.enabled and route.expect is not None]

    def route(self, name: str) -> Route | None:
        return next((route for route in self.routes if route.name == name), None)

    def summary(self) -> str:
        enabled = [route for route in self.routes if route.enabled]
        actions = sum(len(route.actions) for route in enabled)
        return f"{self.source}: {len(self.routes)} routes ({len(enabled)} enabled, {actions} actions)"


class RoutesError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid routes:\n  " + "\n  ".join(problems))


# ---- loading ----------------------------------------------------------------------------------------


def load_routes(path: str | Path, environ: Mapping[str, str] | None = None, *, kinds: ActionKinds) -> RouteTable:
    path = Path(path)
    try:
        with path.open("rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)  # a larger file is refused without reading all of it
        text = data.decode("utf-8", "ignore" if len(data) > MAX_FILE_BYTES else "strict")
    except OSError as error:
        raise RoutesError([f"{path}: cannot read routes file: {error.strerror}"]) from None
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise RoutesError([f"{path}:{line}: the file is not UTF-8 text: {error.reason}"]) from None
    return parse_routes(text, str(path), os.environ if environ is None else environ, kinds=kinds)


def parse_routes(text: str, source: str, environ: Mapping[str, str], *, kinds: ActionKinds) -> RouteTable:
    """The routes of `text`; `kinds` maps each action kind to its Action class (handlers.kinds,
    injected by shared/worker.py: this stage does not import the action kinds)."""
    problems, warnings = Problems(source), Problems(source)
    try:
        document = load_yaml(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark else 0
        reason = getattr(error, "problem", None) or str(error)
        what = "YAML too large" if isinstance(error, LimitExceeded) else "YAML syntax error"
        raise RoutesError([f"{source}:{line}: {what}: {reason}"]) from None
    if not isinstance(document, LineDict) or not isinstance(document.get("routes"), LineList):
        raise RoutesError([f"{source}:1: the file must be a mapping with a `routes:` list"])
    for key in document:
        if key != "routes":
            problems.add(document.line_of(key), f"unknown top-level key {key!r} (only `routes`)")
    routes: list[Route] = []
    seen: dict[str, int] = {}
    for index, spec in enumerate(document["routes"]):
        line = document["routes"].line_of(index)
        route = _parse_route(spec, index, line, problems, warnings, environ, kinds)
        if route is None:
            continue
        if route.name in seen:
            problems.add(line, f"duplicate route name {route.name!r} (first at line {seen[route.name]})")
        seen.setdefault(route.name, line)
        routes.append(route)
    if problems:
        raise RoutesError(problems.lines())
    return RouteTable(source, tuple(routes), tuple(warnings.lines()))


def _parse_route(
    spec: Any,
    index: int,
    line: int,
    problems: Problems,
    warnings: Problems,
    environ: Mapping[str, str],
    kinds: ActionKinds,
) -> Route | None:
    problems.context = f"routes[{index}]"
    if not isinstance(spec, LineDict):
        problems.add(line, "each route must be a mapping with name, events and actions")
        return None
    name = spec.get("name")
    if not isinstance(name, str) or not ROUTE_NAME.match(name):
        hint = f" (YAML read {name!r}: quote the name)" if isinstance(name, (bool, int, float)) else ""
        problems.add(
            spec.line_of("name"), f"`name` is required: letters, digits, '.', '_' or '-', 1-63 characters{hint}"
        )
        name = f"routes[{index}]"
    else:
        problems.context = f"route {name!r}"
    for key in spec:
        if key not in ROUTE_KEYS:
            problems.add(spec.line_of(key), f"unknown key {key!r} (allowed: {', '.join(ROUTE_KEYS)})")
    enabled = spec.get("enabled", True)
    if not isinstance(enabled, bool):
        problems.add(spec.line_of("enabled"), f"`enabled` must be true or false, got {enabled!r}")
    # A disabled route may name settings that are not configured yet: its action problems are warnings.
    warnings.context = f"{problems.context} (disabled)"
    written_expect = spec.get("expect")
    recurring = isinstance(written_expect, Mapping) and "every" in written_expect and spec.get("events") is None
    event_types = () if recurring else _parse_events(spec, problems)
    conditions = _parse_when(spec, problems)
    conditions += _default_conditions(spec, problems, event_types, conditions)
    expect = None
    if written_expect is not None:
        from shared.routing.expect_parse import parse_expect  # zoneinfo only for routes with `expect:`

        expect = parse_expect(spec, problems, event_types)
    # The actions of a route with `expect:` see the synthetic events only.
    acting_on = event_types if written_expect is None else _expectation_types(written_expect)
    if written_expect is not None:
        for key in ("group", "enrich"):
            if spec.get(key):
                problems.add(spec.line_of(key), f"`{key}` does not apply to a route with `expect:`")
    route = Route(
        name=name,
        event_types=event_types,
        conditions=conditions,
        actions=_parse_actions(spec, problems if enabled is not False else warnings, environ, acting_on, kinds),
        enabled=enabled is not False,
        description=str(spec.get("description") or ""),
        line=line,
        noise=parse_noise(spec, problems, acting_on),
        enrich=written_expect is None and _parse_enrich(spec, problems, event_types, conditions),
        expect=expect,
    )
    warnings.context = problems.context
    _warn_unknown_paths(route, warnings)
    problems.context = warnings.context = ""
    return route


def _default_conditions(
    spec: LineDict, problems: Problems, event_types: tuple[str, ...], conditions: tuple[Condition, ...]
) -> tuple[Condition, ...]:
    """The condition that keeps a route on policy or resource events to Azure ML resources, unless the
    route has its own on the same path (shared/events/sources.py). A route's conditions apply to all its
    types, so types whose defaults differ cannot share a route."""
    defaults = {default_condition(event_type) for event_type in event_types}
    if len(defaults) > 1:
        written = ", ".join(f"{short_event_type(t)} ({_describe(default_condition(t))})" for t in event_types)
        problems.add(spec.line_of("events"), f"events: these types filter differently by default: {written}; "
                     "list them in separate routes")  # fmt: skip
        return ()
    (default,) = defaults or {None}
    if default is None or any(condition.path.lower() == default[0] for condition in conditions):
        return ()
    path, op, value = default
    return (Condition(path, op, value, spec.line_of("events")),)


def _describe(default: tuple[str, str, str] | None) -> str:
    return f"{default[0]}: {{{default[1]}: {default[2]}}}" if default else "none"


def _warn_unknown_paths(route: Route, warnings: Problems) -> None:
    """A `data.` path in `when:` or `group.by` that no event of the route's types has: the condition
    never holds (or the group is always empty), which validates but is almost always a typo."""
    paths = [(condition.line, condition.path, "when") for condition in route.conditions]
    if route.noise.group is not None:
        paths += [(route.line, path, "group.by") for path in route.noise.group.by]
    for line, path, where in paths:
        if problem := path_problem(path, route.event_types):
            warnings.add(line, f"{where}: {problem}")


def _expectation_types(written: Any) -> tuple[str, ...]:
    late = isinstance(written, Mapping) and written.get("resolved_late") is True
    return (EXPECTATION_MISSED, EXPECTATION_RESOLVED_LATE) if late else (EXPECTATION_MISSED,)


def _parse_enrich(
    spec: LineDict, problems: Problems, event_types: tuple[str, ...], conditions: tuple[Condition, ...]
) -> bool:
    enrich = spec.get("enrich", False)
    if not isinstance(enrich, bool):
        problems.add(spec.line_of("enrich"), f"`enrich` must be true or false, got {enrich!r}")
        enrich = False
    short_types = {short_event_type(event_type) for event_type in event_types}
    if enrich and short_types and not short_types & {t for types in FETCHED_FOR.values() for t in types}:
        problems.add(spec.line_of("enrich"), "`enrich` fetches details of runs and registered models only "
                     "(RunCompleted, RunStatusChanged, ModelRegistered)")  # fmt: skip
    for condition in conditions:
        if not condition.enriched:
            continue
        root = condition.path.partition(".")[0].lower()
        if not enrich:
            problems.add(condition.line, f"{condition.path}: conditions on {root}.* need `enrich: true` on the route")
        elif short_types and not short_types & set(FETCHED_FOR[root]):
            fetched = ", ".join(FETCHED_FOR[root])
            problems.add(condition.line, f"{condition.path}: {root}.* is fetched only for {fetched} events")
    return enrich


def _parse_events(spec: LineDict, problems: Problems) -> tuple[str, ...]:
    events = spec.get("events")
    if isinstance(events, str):
        events = [events]
    if not isinstance(events, list) or not events:
        problems.add(spec.line_of("events"), "`events` is required: a list such as [RunStatusChanged]")
        return ()
    types = []
    for written in events:
        event_type = full_event_type(str(written))
        if event_type is None:
            known = ", ".join(short_event_type(t) for t in KNOWN_EVENT_TYPES)
            problems.add(spec.line_of("events"), f"unknown event type {written!r} (known: {known})")
        elif event_type not in types:
            types.append(event_type)
    return tuple(types)


def _parse_when(spec: LineDict, problems: Problems) -> tuple[Condition, ...]:
    when = spec.get("when")
    if when is None:
        return ()
    if not isinstance(when, LineDict):
        problems.add(spec.line_of("when"), "`when` must be a mapping of path: condition")
        return ()
    conditions: list[Condition] = []
    for path, condition_spec in when.items():
        found, condition_problems = parse_conditions(str(path), condition_spec, when.line_of(path))
        conditions.extend(found)
        for problem in condition_problems:
            problems.add(when.line_of(path), problem)
    return tuple(conditions)


def _parse_actions(
    spec: LineDict, problems: Problems, environ: Mapping[str, str], event_types: tuple[str, ...], kinds: ActionKinds
) -> tuple[RouteAction, ...]:
    actions_spec = spec.get("actions")
    if not isinstance(actions_spec, LineList) or not actions_spec:
        problems.add(spec.line_of("actions"), "`actions` is required: a list such as [log: {}]")
        return ()
    actions = []
    for position, item in enumerate(actions_spec):
        line = actions_spec.line_of(position)
        if isinstance(item, str):
            item = LineDict({item: {}})
        if not isinstance(item, Mapping) or len(item) != 1:
            problems.add(line, "each action is a mapping with exactly one kind, e.g. `- webhook: {url: ...}`")
            continue
        ((kind, options),) = item.items()
        options = dict(options or {}) if isinstance(options, Mapping) or options is None else options
        if kind not in kinds:
            problems.add(line, f"unknown action kind {kind!r} (known: {', '.join(kinds)})")
            continue
        if not isinstance(options, dict):
            problems.add(line, f"{kind}: options must be a mapping")
            continue
        options = substitute_settings(options, environ, problems, line, f"actions[{position}].{kind}")
        timeout = pop_duration(options, "timeout", problems, line, kind)
        retry = parse_retry(options.pop("retry", None), problems, line, kind)
        action = kinds[kind](options, problems, line, event_types)
        actions.append(RouteAction(position, kind, action, line, timeout, retry))
    return tuple(actions)


# ---- the worker's compiled routes ---------------------------------------------------------------------

_cache: dict[str, tuple[int, RouteTable]] = {}
_cache_lock = threading.Lock()


def routes_for(path: Path, environ: Mapping[str, str], *, kinds: ActionKinds) -> RouteTable:
    """Routes compiled once per worker and reloaded when the file changes."""
    key = str(path)
    try:
        mtime = path.stat().st_mtime_ns
    except OSError as error:
        raise RoutesError([f"{path}: cannot read routes file: {error.strerror}"]) from None
    with _cache_lock:
        cached = _cache.get(key)
        if cached and cached[0] == mtime:
            return cached[1]
    table = load_routes(path, environ, kinds=kinds)
    with _cache_lock:
        _cache[key] = (mtime, table)
    return table
