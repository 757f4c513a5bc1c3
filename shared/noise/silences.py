"""Ad-hoc silences: "quiet route X (for events matching Y) for the next 2 hours, because Z", added
without a redeploy by scripts/silence.py and honoured by every worker.

A silence is a row in Table Storage (SILENCE_TABLE). Workers read the active ones at most every
SILENCE_CACHE_SECONDS, so a new silence takes effect within that time everywhere.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.platform.clock import now, utc
from shared.platform.storage import insert_entity
from shared.routing.conditions import Condition, check_path
from shared.settings import Settings

PARTITION = "silence"
ALL_ROUTES = "*"
_MATCHER = re.compile(r"^\s*([^=\s]+)\s*=\s*(.*?)\s*$")


@dataclass(frozen=True)
class Silence:
    id: str
    route: str  # a route name, or "*" for every route
    when: tuple[str, ...]  # matchers as written: `data.ExperimentName=exp-42`
    until: datetime
    reason: str
    created: datetime
    created_by: str = ""

    @property
    def conditions(self) -> tuple[Condition, ...]:
        return tuple(parse_matcher(text) for text in self.when)

    def covers(self, route: str, view: Mapping[str, Any], at: datetime) -> bool:
        return (
            self.until > at
            and self.route in (route, ALL_ROUTES)
            and all(condition.holds(view) for condition in self.conditions)
        )

    def describe(self) -> str:
        scope = f" where {' and '.join(self.when)}" if self.when else ""
        return f"{self.reason} (silence {self.id}{scope}, until {self.until:%Y-%m-%d %H:%M} UTC)"


def parse_matcher(text: str) -> Condition:
    """`path=value` -> an equals condition (compared as `when:` compares); ValueError naming the problem."""
    match = _MATCHER.match(text)
    if not match:
        raise ValueError(f"--when {text!r} must be path=value, e.g. data.ExperimentName=exp-42")
    if problem := check_path(match[1]):
        raise ValueError(f"--when {text!r}: {problem}")
    return Condition(match[1], "equals", match[2])


class SilenceStore:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._cached: tuple[float, list[Silence]] | None = None
        self._lock = threading.Lock()

    @property
    def table(self) -> Any:
        from shared.platform.storage import existing_table

        return existing_table(self.settings, self.settings.silence_table)

    def add(self, route: str, when: list[str], seconds: float, reason: str, created_by: str = "") -> Silence:
        for text in when:
            parse_matcher(text)
        if seconds <= 0:
            raise ValueError("--for must be a positive duration, e.g. 2h")
        if not reason.strip():
            raise ValueError("--reason is required: say why, for whoever wonders where the alerts went")
        created = now()
        silence = Silence(uuid.uuid4().hex[:8], route, tuple(when), created + timedelta(seconds=seconds),
                          reason.strip(), created, created_by)  # fmt: skip
        insert_entity(
            self.table,
            {"PartitionKey": PARTITION, "RowKey": silence.id, "route": route, "when": "\n".join(when),
             "until": silence.until, "reason": silence.reason, "created": created, "created_by": created_by}
        )  # fmt: skip
        self._cached = None
        return silence

    def remove(self, silence_id: str) -> bool:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            self.table.get_entity(PARTITION, silence_id)
        except ResourceNotFoundError:
            return False
        self.table.delete_entity(PARTITION, silence_id)
        self._cached = None
        return True

    def list(self, *, include_expired: bool = False) -> list[Silence]:
        from azure.core.exceptions import ResourceNotFoundError

        from shared.platform.storage import table_service

        # Read without creating the table: a worker's first event should not pay for a create.
        table = table_service(self.settings).get_table_client(self.settings.silence_table)
        query = "PartitionKey eq @partition" + ("" if include_expired else " and until gt @now")
        try:
            entities = list(table.query_entities(query, parameters={"partition": PARTITION, "now": now()}))
        except ResourceNotFoundError:
            return []  # no silence has ever been added
        return sorted((_silence(entity) for entity in entities), key=lambda silence: silence.until)

    def active(self) -> list[Silence]:
        """The active silences, read again when older than SILENCE_CACHE_SECONDS."""
        with self._lock:
            cached = self._cached
            if cached is None or time.monotonic() - cached[0] >= self.settings.silence_cache_seconds:
                cached = self._cached = (time.monotonic(), self.list())
            return cached[1]

    def silencing(self, route: str, view: Mapping[str, Any]) -> Silence | None:
        at = now()
        return next((silence for silence in self.active() if silence.covers(route, view, at)), None)


def _silence(entity: Mapping[str, Any]) -> Silence:
    when = tuple(line for line in str(entity.get("when") or "").split("\n") if line)
    return Silence(entity["RowKey"], entity["route"], when, utc(entity["until"]), entity.get("reason", ""),
                   utc(entity["created"]), entity.get("created_by", ""))  # fmt: skip
