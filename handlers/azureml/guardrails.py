"""Guardrails for actions that start compute: an event storm must not become a compute bill.

The options are parsed here; `cooldown` (with `key`) and `max_per_day` are counted in Azure Table
Storage by shared/noise/counters.py (the gate's `repeat_interval` uses the same counters).
`skip_if_running` asks Azure ML itself (see handlers/azureml/action.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import jinja2

from shared.problems import Problems
from shared.routing.durations import parse_duration
from shared.templates import TemplateProblem, compile_checked

MAX_PER_DAY_LIMIT = 500  # holders of a day are kept in one entity property (64 KiB)


@dataclass(frozen=True)
class Guardrails:
    """The guardrail options of one action, validated when routes are loaded."""

    cooldown: float | None = None  # seconds
    key: jinja2.Template | None = None  # what the cooldown is per; None: the action's default key
    max_per_day: int | None = None
    skip_if_running: bool = False

    OPTIONS: ClassVar[Mapping[str, bool]] = {
        "cooldown": False,
        "key": False,
        "max_per_day": False,
        "skip_if_running": False,
    }

    @classmethod
    def parse(
        cls, options: Mapping[str, Any], problems: Problems, line: int, kind: str, event_types: tuple[str, ...]
    ) -> Guardrails:
        cooldown = None
        if options.get("cooldown") is not None:
            try:
                cooldown = parse_duration(options["cooldown"]) or None
            except ValueError as error:
                problems.add(line, f"{kind}: cooldown: {error}")
        key = None
        if options.get("key") is not None:
            if cooldown is None:
                problems.add(line, f"{kind}: key only applies with a cooldown (e.g. cooldown: 6h)")
            try:
                key = compile_checked(str(options["key"]), event_types)
            except TemplateProblem as problem:
                problems.add(line, f"{kind}: key: {problem}")
        max_per_day = options.get("max_per_day")
        if max_per_day is not None and (
            isinstance(max_per_day, bool)
            or not isinstance(max_per_day, int)
            or not 1 <= max_per_day <= MAX_PER_DAY_LIMIT
        ):
            problems.add(
                line, f"{kind}: max_per_day must be a whole number from 1 to {MAX_PER_DAY_LIMIT}, got {max_per_day!r}"
            )
            max_per_day = None
        skip_if_running = options.get("skip_if_running", False)
        if not isinstance(skip_if_running, bool):
            problems.add(line, f"{kind}: skip_if_running must be true or false, got {skip_if_running!r}")
            skip_if_running = False
        return cls(cooldown, key, max_per_day, skip_if_running)

    @property
    def counted(self) -> bool:
        return self.cooldown is not None or self.max_per_day is not None
