"""A route's noise control options, validated when routes.yaml is loaded:

    group: {by: [data.ExperimentName], wait: 2m, max: 100}   # one digest per group (shared/noise/digests.py)
    repeat_interval: 1h                                      # at most once per key per interval
    key: "{{ event.data.ExperimentName }}"                   # what repeat_interval counts (default: subject)
    mute: [{days: [sat, sun]}]                               # recurring quiet times (shared/routing/mutes.py)

Ad-hoc silences (scripts/silence.py) need no route option; shared/noise/gate.py applies all of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.problems import Problems
from shared.routing.conditions import check_path
from shared.routing.durations import parse_duration
from shared.routing.yamlsource import LineDict

if TYPE_CHECKING:
    import jinja2

    from shared.routing.mutes import MuteWindow

NOISE_KEYS = ("group", "repeat_interval", "key", "mute")
GROUP_KEYS = ("by", "wait", "max")
# The most members one digest takes (a burst of uploads as one pipeline run), and the default.
MAX_GROUP_SIZE = 1000
DEFAULT_GROUP_SIZE = 100
DEFAULT_WAIT_SECONDS = 120.0


@dataclass(frozen=True)
class GroupSpec:
    by: tuple[str, ...]  # condition paths whose values name the group
    wait: float  # seconds after the group's first pending event
    max: int = DEFAULT_GROUP_SIZE


@dataclass(frozen=True)
class NoiseControl:
    group: GroupSpec | None = None
    repeat_interval: float | None = None
    repeat_key: jinja2.Template | None = None  # None: the event's subject
    mutes: tuple[MuteWindow, ...] = ()


def parse_noise(spec: LineDict, problems: Problems, event_types: tuple[str, ...]) -> NoiseControl:
    mutes: tuple[MuteWindow, ...] = ()
    if spec.get("mute") is not None:
        from shared.routing.mutes import parse_mutes  # zoneinfo only for routes with `mute:`

        mutes, found = parse_mutes(spec["mute"])
        for problem in found:
            problems.add(spec.line_of("mute"), problem)
    return NoiseControl(
        group=_parse_group(spec, problems),
        repeat_interval=_parse_repeat(spec, problems),
        repeat_key=_parse_key(spec, problems, event_types),
        mutes=mutes,
    )


def _parse_group(spec: LineDict, problems: Problems) -> GroupSpec | None:
    group = spec.get("group")
    if group is None:
        return None
    line = spec.line_of("group")
    if not isinstance(group, Mapping):
        problems.add(line, "`group` must be a mapping like {by: [data.ExperimentName], wait: 2m, max: 100}")
        return None
    for key in group:
        if key not in GROUP_KEYS:
            problems.add(line, f"group: unknown key {key!r} (allowed: {', '.join(GROUP_KEYS)})")
    by = group.get("by", [])
    by = [by] if isinstance(by, str) else by
    if not isinstance(by, list) or not all(isinstance(path, str) for path in by):
        problems.add(line, "group.by must be a list of paths, e.g. [data.ExperimentName]")
        by = []
    for path in by:
        if problem := check_path(path):
            problems.add(line, f"group.by: {problem}")
    try:
        wait = parse_duration(group.get("wait", DEFAULT_WAIT_SECONDS))
    except ValueError as error:
        problems.add(line, f"group.wait: {error}")
        wait = DEFAULT_WAIT_SECONDS
    size = group.get("max", DEFAULT_GROUP_SIZE)
    if isinstance(size, bool) or not isinstance(size, int) or not 2 <= size <= MAX_GROUP_SIZE:
        problems.add(line, f"group.max must be a whole number from 2 to {MAX_GROUP_SIZE}, got {size!r}")
        size = DEFAULT_GROUP_SIZE
    return GroupSpec(tuple(by), wait, size)


def _parse_repeat(spec: LineDict, problems: Problems) -> float | None:
    if spec.get("repeat_interval") is None:
        return None
    try:
        return parse_duration(spec["repeat_interval"]) or None
    except ValueError as error:
        problems.add(spec.line_of("repeat_interval"), f"repeat_interval: {error}")
        return None


def _parse_key(spec: LineDict, problems: Problems, event_types: tuple[str, ...]) -> jinja2.Template | None:
    if spec.get("key") is None:
        return None
    from shared.templates import TemplateProblem, compile_checked  # Jinja2 only for routes that use `key:`

    line = spec.line_of("key")
    if spec.get("repeat_interval") is None:
        problems.add(line, "`key` only applies with a repeat_interval (e.g. repeat_interval: 1h)")
    try:
        return compile_checked(str(spec["key"]), event_types)
    except TemplateProblem as problem:
        problems.add(line, f"key: {problem}")
        return None
