"""Compile routes.yaml into Event Grid subscription filters, where that is exact.

The app evaluates every route itself, so these filters are only an optimisation: they keep
events that no enabled route wants from waking a function. The one rule is that nothing a
route wants may be filtered out, so a filter is emitted only when it is implied by every
enabled route that could take events of that function:

* ``includedEventTypes``: the function's own types (shared/functions.json) that at least one
  enabled route takes. A function no enabled route wants gets ``"subscribe": false``, and the
  postdeploy step removes its subscription.
* ``advancedFilters``: Event Grid ANDs the filters of one subscription, so a route condition
  can only be pushed down when every relevant route has one on the same key with an operator
  of the same kind; the values are then OR-ed (union, or intersection for ``not_in``).
  Only string conditions on ``subject`` are pushed, and only with ASCII, non-numeric operands
  (the app compares numeric-looking strings as numbers, and casefolds Unicode; Event Grid
  does neither). ``data.*`` keys are never pushed: Event Grid does not document whether
  advanced-filter keys are case-sensitive, and real payloads mix camelCase (run events) and
  PascalCase (model and drift events), while the app looks keys up case-insensitively.
* Event Grid limits (25 filters, 25 values in total, 512 characters a value): filters are
  dropped, never trimmed, until the rest fits. Dropping a filter only lets more through.

Output (stdout or --out): ``{"<function>": {"subscribe": true, "includedEventTypes": [...],
"advancedFilters": [...]}, ...}``, the ``filters`` parameter of infra/hooks/eventgrid-subscriptions.bicep.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FUNCTIONS_FILE = REPO_ROOT / "shared" / "functions.json"

MAX_ADVANCED_FILTERS = 25
MAX_FILTER_VALUES = 25
MAX_STRING_VALUE_LENGTH = 512
MAX_SUBSCRIPTION_NAME_LENGTH = 64

# Event Grid string operators that OR their values, by route operator.
_ANY_OF_OPERATORS = {
    "equals": "StringIn",
    "in": "StringIn",
    "startswith": "StringBeginsWith",
    "endswith": "StringEndsWith",
    "contains": "StringContains",
}
_NOT_IN_OPERATOR = "StringNotIn"

# Route paths (their root is case-insensitive in the app) that can be pushed down, and the Event
# Grid key each one becomes.
_PUSHABLE_KEYS = {"subject": "subject"}


class ConditionLike(Protocol):
    path: str
    op: str
    value: Any


class RouteLike(Protocol):
    name: str
    enabled: bool
    event_types: tuple[str, ...]
    conditions: tuple[ConditionLike, ...]


@dataclass(frozen=True)
class _Pushable:
    key: str
    operator: str
    values: tuple[str, ...]


def load_function_event_types(path: Path = DEFAULT_FUNCTIONS_FILE) -> dict[str, list[str]]:
    """Function name -> the event types it takes; keys starting with "_" are comments."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    return {name: list(types) for name, types in raw.items() if not name.startswith("_")}


def subscription_name(function_app_name: str, function_name: str) -> str:
    """Same rule as infra/hooks/eventgrid-subscriptions.bicep: take('<app>-<function with - for _>', 64)."""
    return f"{function_app_name}-{function_name.replace('_', '-')}"[:MAX_SUBSCRIPTION_NAME_LENGTH]


def _as_pushable(condition: ConditionLike) -> _Pushable | None:
    """The Event Grid filter equivalent to one route condition, or None if there is none."""
    key = _PUSHABLE_KEYS.get(condition.path.lower())
    if key is None:
        return None
    value = condition.value
    if condition.op in ("equals", "startswith", "endswith", "contains"):
        values = [value]
    elif condition.op in ("in", "not_in") and isinstance(value, (list, tuple)):
        values = list(value)
    else:
        return None  # matches / numeric / exists, or an operand of the wrong shape
    if not values or not all(_is_exact_string_operand(v) for v in values):
        return None
    if condition.op == "not_in":
        return _Pushable(key, _NOT_IN_OPERATOR, tuple(values))
    return _Pushable(key, _ANY_OF_OPERATORS[condition.op], tuple(values))


def _is_exact_string_operand(value: object) -> bool:
    """True when Event Grid's case-insensitive string match agrees with the app's on this operand."""
    if not isinstance(value, str) or not value or not value.isascii():
        return False
    try:
        float(value.strip())  # the app would compare it as a number ("5" equals "5.0")
    except ValueError:
        return True
    return False


def _dedupe_casefold(values: Iterable[str]) -> list[str]:
    """Event Grid and the app compare strings case-insensitively: one spelling per value."""
    seen: set[str] = set()
    unique: list[str] = []
    for value in values:
        if value.casefold() not in seen:
            seen.add(value.casefold())
            unique.append(value)
    return unique


def _common_filters(routes: Sequence[RouteLike]) -> list[dict[str, Any]]:
    """Advanced filters implied by every one of ``routes`` (each route ANDs its conditions)."""
    per_route: list[dict[tuple[str, str], list[str]]] = []
    for route in routes:
        groups: dict[tuple[str, str], list[str]] = {}
        for condition in route.conditions:
            pushable = _as_pushable(condition)
            if pushable is not None:
                groups.setdefault((pushable.key, pushable.operator), []).extend(pushable.values)
        per_route.append(groups)

    shared_groups = [g for g in per_route[0] if all(g in groups for groups in per_route[1:])]
    filters: list[dict[str, Any]] = []
    for key, operator in shared_groups:
        if operator == _NOT_IN_OPERATOR:
            # Route r needs key not in V_r; all of them hold when key is not in the intersection.
            common = {v.casefold() for v in per_route[0][(key, operator)]}
            for groups in per_route[1:]:
                common &= {v.casefold() for v in groups[(key, operator)]}
            values = [v for v in _dedupe_casefold(per_route[0][(key, operator)]) if v.casefold() in common]
        else:
            # Route r implies "key matches one of V_r"; the union is implied by each of them.
            values = _dedupe_casefold(v for groups in per_route for v in groups[(key, operator)])
        if values:
            filters.append({"operatorType": operator, "key": key, "values": values})
    return _within_limits(filters)


def _within_limits(filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop whole filters (never single values, which would narrow an OR) until Event Grid accepts them."""
    kept = [f for f in filters if all(len(v) <= MAX_STRING_VALUE_LENGTH for v in f["values"])]
    while len(kept) > MAX_ADVANCED_FILTERS or sum(len(f["values"]) for f in kept) > MAX_FILTER_VALUES:
        kept.remove(max(kept, key=lambda f: len(f["values"])))
    return kept


def render(routes: Sequence[RouteLike], function_event_types: Mapping[str, Sequence[str]]) -> dict[str, dict[str, Any]]:
    """Per-function subscription filters for the enabled ``routes``."""
    enabled = [part for r in routes if r.enabled for part in _delivered_to(r)]
    rendered: dict[str, dict[str, Any]] = {}
    for function_name, function_types in function_event_types.items():
        own_types = {t.casefold() for t in function_types}
        # A route with no event types is taken to want every type (the conservative reading).
        relevant = [r for r in enabled if not r.event_types or own_types & {t.casefold() for t in r.event_types}]
        if not relevant:
            rendered[function_name] = {"subscribe": False}
            continue
        wanted = set()
        for route in relevant:
            wanted |= {t.casefold() for t in route.event_types} if route.event_types else own_types
        rendered[function_name] = {
            "subscribe": True,
            "includedEventTypes": [t for t in function_types if t.casefold() in wanted],
            "advancedFilters": _common_filters(relevant),
        }
    return rendered


@dataclass(frozen=True)
class _Wanted:
    name: str
    enabled: bool
    event_types: tuple[str, ...]
    conditions: tuple[ConditionLike, ...]


def _delivered_to(route: RouteLike) -> list[RouteLike]:
    """What a route needs delivered. A route with `expect:` needs its opening events (none for a recurring
    one) and the events its `expect.event` waits for: the follow-ups, such as `Running` or `Completed`
    statuses that routes reacting only to failures would otherwise filter out."""
    expect = getattr(route, "expect", None)
    if expect is None:
        return [route]
    parts: list[RouteLike] = [route] if route.event_types else []
    return [*parts, _Wanted(route.name, True, tuple(expect.event.event_types), tuple(expect.event.conditions))]


def unrouted_event_types(routes: Sequence[RouteLike], function_event_types: Mapping[str, Sequence[str]]) -> list[str]:
    """Event types enabled routes name that no function receives (a likely typo in routes.yaml)."""
    known = {t.casefold() for types in function_event_types.values() for t in types}
    return sorted({t for r in routes if r.enabled for t in r.event_types if t.casefold() not in known})


def _load_routes(routes_file: Path) -> Sequence[RouteLike] | None:
    """The routes as the app parses them, or None (with the problems on stderr) if they do not load."""
    from shared.routing.routes import RoutesError
    from shared.worker import load_routes  # the app's own loader: same parsing

    try:
        return load_routes(routes_file, environ=os.environ).routes
    except RoutesError as error:
        # Often only `${SETTING}` references that this shell does not have; the filters do not
        # depend on actions, but without the routes nothing can be filtered exactly.
        print(f"render_filters: {routes_file} does not load here; not filtering:", file=sys.stderr)
        for problem in error.problems:
            print(f"  {problem}", file=sys.stderr)
        return None


def render_file(routes_file: Path, functions_file: Path = DEFAULT_FUNCTIONS_FILE) -> dict[str, dict[str, Any]]:
    """The filters for a routes file; every function keeps all its types when it is missing or does not load."""
    function_event_types = load_function_event_types(functions_file)
    routes = _load_routes(routes_file) if routes_file.is_file() else None
    if routes is None:
        print(f"render_filters: no usable {routes_file}; every function keeps all its event types", file=sys.stderr)
        return {name: {"subscribe": True} for name in function_event_types}
    for event_type in unrouted_event_types(routes, function_event_types):
        print(f"render_filters: no function receives {event_type!r} (named by a route)", file=sys.stderr)
    return render(routes, function_event_types)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routes", type=Path, default=REPO_ROOT / os.environ.get("ROUTES_FILE", "routes.yaml"))
    parser.add_argument("--functions", type=Path, default=DEFAULT_FUNCTIONS_FILE)
    parser.add_argument("--out", type=Path, help="write the filters JSON here instead of stdout")
    args = parser.parse_args(argv)

    text = json.dumps(render_file(args.routes, args.functions), indent=2) + "\n"
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
