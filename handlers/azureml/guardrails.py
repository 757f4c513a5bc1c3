"""Guardrails for actions that start compute: an event storm must not become a compute bill.

`cooldown` (with `key`) and `max_per_day` are counted in Azure Table Storage (the ledger's account),
in one partition per route action: a row per cooldown key and a row per UTC day. Both rows are
read, judged and written back in ONE entity-group transaction guarded by their etags (or by
insert-if-absent), so two deliveries of different events racing for the last slot cannot both
win: the loser's transaction fails, it reads again and is skipped. A reservation remembers the
ledger key that holds it, so the redelivery of the same event passes its own reservation instead
of being stopped by it. `skip_if_running` asks Azure ML itself (see handlers/azureml.py).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

import jinja2

from handlers.base import ActionSkipped
from shared.durations import parse_duration
from shared.ledger import now, table_key
from shared.problems import Problems
from shared.settings import Settings
from shared.templates import TemplateProblem, compile_checked

MAX_PER_DAY_LIMIT = 500  # holders of a day are kept in one entity property (64 KiB)
_RESERVE_ATTEMPTS = 8


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
