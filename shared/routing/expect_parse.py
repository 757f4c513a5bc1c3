"""`expect:` validated when routes.yaml is loaded (its forms: expect.py): every problem reported with
its line, and what can never match (a status Azure ML does not send, a field the event types do not
carry) reported rather than silently waited for.
"""

from __future__ import annotations

from collections.abc import Mapping

from shared.events.catalog import KNOWN_EVENT_TYPES, full_event_type, short_event_type
from shared.events.model import EVENT_CLASSES, RUN_STATUSES
from shared.problems import Problems
from shared.routing.conditions import Condition, check_path, parse_conditions
from shared.routing.durations import parse_duration
from shared.routing.expect import RUN_COMPLETED, EventFilter, Expectation, FollowUp, Recurring
from shared.routing.mutes import check_keys, parse_clock, parse_days, parse_timezone
from shared.routing.yamlsource import LineDict

FOLLOW_UP_KEYS = ("within", "event", "same", "at_least", "resolved_late")
RECURRING_KEYS = ("every", "since", "event", "at_least", "resolved_late")
EVERY_KEYS = ("days", "by", "timezone")
FILTER_KEYS = ("events", "when")
MAX_WITHIN_SECONDS = 30 * 86400  # state is kept this long at most; Event Grid retries for 24 hours
MAX_AT_LEAST = 100


def parse_expect(spec: LineDict, problems: Problems, route_event_types: tuple[str, ...]) -> Expectation | None:
    """The route's `expect:` (None when absent or invalid; problems are reported with their lines)."""
    if spec.get("expect") is None:
        return None
    expect = spec["expect"]
    line = spec.line_of("expect")
    if not isinstance(expect, LineDict):
        problems.add(line, "`expect` must be a mapping with `within` (after an event) or `every` (recurring)")
        return None
    if ("within" in expect) == ("every" in expect):
        problems.add(line, "expect: give `within` (a follow-up after the route's event) or `every` (recurring), "
                     "one of them")  # fmt: skip
        return None
    recurring = "every" in expect
    allowed = RECURRING_KEYS if recurring else FOLLOW_UP_KEYS
    for key in expect:
        if key not in allowed:
            form = "a recurring expectation (`every`)" if recurring else "a follow-up expectation (`within`)"
            problems.add(expect.line_of(key), f"expect: unknown key {key!r} for {form} (allowed: {', '.join(allowed)})")
    event = _parse_filter(expect, problems)
    at_least = _parse_at_least(expect, problems)
    resolved_late = expect.get("resolved_late", False)
    if not isinstance(resolved_late, bool):
        problems.add(expect.line_of("resolved_late"),
                     f"expect.resolved_late must be true or false, got {resolved_late!r}")  # fmt: skip
        resolved_late = False
    if recurring:
        if spec.get("events") is not None or spec.get("when") is not None:
            problems.add(line, "expect: a recurring expectation (`every`) needs no opening event: "
                         "remove the route's `events`/`when`, or use `within` to expect a follow-up")  # fmt: skip
        return _parse_recurring(expect, problems, event, at_least, resolved_late)
    if not route_event_types:
        problems.add(line, "expect: `within` counts from the route's event: the route needs `events`")
    within = _parse_within(expect, problems)
    same = _parse_same(expect, problems, route_event_types, event)
    if event is None or within is None or same is None:
        return None
    return FollowUp(within, event, same, at_least, resolved_late)


def _parse_within(expect: LineDict, problems: Problems) -> float | None:
    line = expect.line_of("within")
    try:
        within = parse_duration(expect["within"])
    except ValueError as error:
        problems.add(line, f"expect.within: {error}")
        return None
    if not 60 <= within <= MAX_WITHIN_SECONDS:
        problems.add(line, f"expect.within must be from 1m to {MAX_WITHIN_SECONDS // 86400}d, got {expect['within']!r}")
        return None
    return within


def _parse_at_least(expect: LineDict, problems: Problems) -> int:
    at_least = expect.get("at_least", 1)
    if isinstance(at_least, bool) or not isinstance(at_least, int) or not 1 <= at_least <= MAX_AT_LEAST:
        problems.add(expect.line_of("at_least"),
                     f"expect.at_least must be a whole number from 1 to {MAX_AT_LEAST}, got {at_least!r}")  # fmt: skip
        return 1
    return at_least


def _parse_filter(expect: LineDict, problems: Problems) -> EventFilter | None:
    line = expect.line_of("event")
    spec = expect.get("event")
    if not isinstance(spec, LineDict):
        problems.add(line, "expect.event is required: a mapping like {events: [RunCompleted], when: {...}}")
        return None
    for key in spec:
        if key not in FILTER_KEYS:
            problems.add(spec.line_of(key), f"expect.event: unknown key {key!r} (allowed: {', '.join(FILTER_KEYS)})")
    written = spec.get("events")
    written = [written] if isinstance(written, str) else written
    if not isinstance(written, list) or not written:
        problems.add(spec.line_of("events"), "expect.event.events is required: a list such as [RunCompleted]")
        return None
    types: list[str] = []
    for name in written:
        event_type = full_event_type(str(name))
        if event_type is None:
            known = ", ".join(short_event_type(t) for t in KNOWN_EVENT_TYPES)
            problems.add(spec.line_of("events"), f"expect.event: no function receives {name!r} events "
                         f"(known: {known})")  # fmt: skip
        elif event_type not in types:
            types.append(event_type)
    conditions: list[Condition] = []
    when = spec.get("when")
    if when is not None and not isinstance(when, LineDict):
        problems.add(spec.line_of("when"), "expect.event.when must be a mapping of path: condition")
    elif when is not None:
        for path, condition_spec in when.items():
            found, found_problems = parse_conditions(str(path), condition_spec, when.line_of(path))
            for problem in found_problems:
                problems.add(when.line_of(path), f"expect.event.when: {problem}")
            for condition in found:
                if condition.enriched:
                    problems.add(condition.line, f"expect.event.when: {condition.path}: follow-ups are matched "
                                 "on the event itself; run.*/model.* details are not fetched for them")  # fmt: skip
                elif reason := _never_delivered(condition, tuple(types)):
                    problems.add(condition.line, f"expect.event.when: {reason}")
                else:
                    conditions.append(condition)
    if not types:
        return None
    return EventFilter(tuple(types), tuple(conditions))


def _never_delivered(condition: Condition, event_types: tuple[str, ...]) -> str | None:
    """Why no event of `event_types` can ever satisfy `condition`, or None: a status Azure ML does not
    send, or a typed field that none of these event types carries."""
    root, _, field = condition.path.partition(".")
    if root.lower() != "data" or not field or "." in field:
        return None
    carriers = _carriers(field)
    if carriers and event_types and not carriers & set(event_types):
        types = ", ".join(sorted(short_event_type(t) for t in carriers))
        return f"{condition.path}: only {types} events carry {field}, so no event of these types matches"
    if field.lower() == "runstatus" and condition.op in ("equals", "in"):
        values = condition.value if condition.op == "in" else [condition.value]
        known = {status.lower() for status in RUN_STATUSES} | {"cancelled"}
        unknown = [str(value) for value in values if str(value).lower() not in known]
        if len(unknown) == len(values):
            return f"{condition.path}: {', '.join(unknown)} is no run status Azure ML sends " \
                   f"(one of {', '.join(RUN_STATUSES)})"  # fmt: skip
    return None


def _carriers(field: str) -> set[str]:
    """The event types whose typed fields include `field` (RunCompleted carries an implied RunStatus)."""
    carriers = {
        event_type
        for event_type, cls in EVENT_CLASSES.items()
        for _, key, _, _ in cls.FIELDS
        if key.lower() == field.lower()
    }
    if field.lower() == "runstatus":
        carriers.add(RUN_COMPLETED)
    return carriers


def _parse_same(
    expect: LineDict, problems: Problems, opening_types: tuple[str, ...], event: EventFilter | None
) -> tuple[str, ...] | None:
    same = expect.get("same", [])
    same = [same] if isinstance(same, str) else same
    line = expect.line_of("same")
    if not isinstance(same, list) or not all(isinstance(path, str) for path in same):
        problems.add(line, "expect.same must be a list of paths, e.g. [data.RunId]")
        return None
    ok = True
    for path in same:
        if problem := check_path(path):
            problems.add(line, f"expect.same: {problem}")
            ok = False
            continue
        root, _, field = path.partition(".")
        if root.lower() in ("run", "model"):
            problems.add(line, f"expect.same: {path}: only the events' own fields tie them (not run.*/model.*)")
            ok = False
            continue
        if root.lower() != "data" or "." in field or not (carriers := _carriers(field)):
            continue
        for side, types in (("opening", opening_types), ("follow-up", event.event_types if event else ())):
            missing = [short_event_type(t) for t in types if t not in carriers]
            if missing:
                problems.add(line, f"expect.same: {path}: {', '.join(missing)} events ({side}) do not carry {field}")
                ok = False
    return tuple(same) if ok else None


def _parse_recurring(
    expect: LineDict, problems: Problems, event: EventFilter | None, at_least: int, resolved_late: bool
) -> Recurring | None:
    every = expect["every"]
    line = expect.line_of("every")
    if not isinstance(every, Mapping):
        problems.add(line, 'expect.every must be a mapping like {days: [mon-fri], by: "07:00", timezone: UTC}')
        return None
    found: list[str] = []
    check_keys(every, EVERY_KEYS, found)
    days = parse_days(every.get("days"), found)
    if "by" not in every:
        found.append('`by` is required: the time of day the event must have happened by, e.g. "07:00"')
    by = parse_clock(every.get("by", "00:00"), "by", found)
    timezone = parse_timezone(every.get("timezone"), found)
    if by == 24 * 60:
        found.append("by: use 00:00 of the next day rather than 24:00")
    for problem in found:
        problems.add(line, f"expect.every: {problem}")
    since_problems: list[str] = []
    since = parse_clock(expect["since"], "since", since_problems) if "since" in expect else None
    for problem in since_problems:
        problems.add(expect.line_of("since"), f"expect.{problem}")
    if found or since_problems or by is None or event is None or not days:
        return None
    return Recurring(days, by, timezone, event, since if since != 24 * 60 else 0, at_least, resolved_late)
