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


@dataclass
class Reservation:
    """The rows a start was counted in; released again if the start fails for good."""

    store: GuardrailStore
    partition: str
    holder: str
    rows: tuple[str, ...]

    def release(self) -> None:
        self.store.release(self)


class GuardrailStore:
    def __init__(self, settings: Settings) -> None:
        from shared.storage import table_service

        self.table = table_service(settings).get_table_client(settings.guardrail_table)
        self._created = False
        self._lock = threading.Lock()

    def _ensure_table(self) -> None:
        from azure.core.exceptions import ResourceExistsError

        with self._lock:
            if not self._created:
                try:
                    self.table.create_table()
                except ResourceExistsError:
                    pass
                self._created = True

    def _get(self, partition: str, row: str) -> Any:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self.table.get_entity(partition, row)
        except ResourceNotFoundError:
            return None

    def reserve(
        self,
        scope: str,
        holder: str,
        event_id: str,
        *,
        cooldown: tuple[str, float] | None,
        max_per_day: int | None,
        wording: tuple[str, str, str] = ("cooldown", "started", "new start"),
    ) -> Reservation:
        """Count one start for the ledger key `holder`, or raise ActionSkipped saying why not.
        `wording` names the limit in that reason (a route's repeat_interval counts notifications)."""
        from azure.core import MatchConditions
        from azure.data.tables import TableTransactionError, UpdateMode

        self._ensure_table()
        partition = table_key(scope)
        for _ in range(_RESERVE_ATTEMPTS):
            at = now()
            operations: list[tuple[Any, ...]] = []
            if cooldown is not None:
                key, seconds = cooldown
                row = f"cooldown|{table_key(key)}"
                existing = self._get(partition, row)
                if existing is not None and existing["holder"] != holder and existing["until"] > at:
                    limit, done, next_one = wording
                    raise ActionSkipped(
                        f"{limit}: {key!r} last {done} at {_stamp(existing['started'])} by event "
                        f"{existing['event_id']}; no {next_one} until {_stamp(existing['until'])}"
                    )
                entity = {"PartitionKey": partition, "RowKey": row, "key": key, "holder": holder, "event_id": event_id,
                          "started": at, "until": at + timedelta(seconds=seconds)}  # fmt: skip
                operations.append(_write(entity, existing, UpdateMode, MatchConditions))
            if max_per_day is not None:
                day = at.strftime("%Y-%m-%d")
                row = f"day|{day}"
                existing = self._get(partition, row)
                holders = json.loads(existing["holders"]) if existing is not None else []
                if holder not in holders:
                    if len(holders) >= max_per_day:
                        midnight = datetime.combine(at.date() + timedelta(days=1), datetime.min.time(), at.tzinfo)
                        raise ActionSkipped(
                            f"max_per_day: {len(holders)} of {max_per_day} starts used on {day} (UTC); "
                            f"no new start until {_stamp(midnight)}"
                        )
                    holders.append(holder)
                entity = {"PartitionKey": partition, "RowKey": row, "holders": json.dumps(holders),
                          "count": len(holders)}  # fmt: skip
                operations.append(_write(entity, existing, UpdateMode, MatchConditions))
            try:
                self.table.submit_transaction(operations)
            except TableTransactionError:
                continue  # another delivery wrote first: judge again on what it left
            return Reservation(self, partition, holder, tuple(op[1]["RowKey"] for op in operations))
        raise ActionSkipped("guardrails: too many concurrent starts competing for the same limits; not started")

    def release(self, reservation: Reservation) -> None:
        """Give back what a failed start took (best effort: a slot left taken only makes limits stricter)."""
        from azure.core import MatchConditions
        from azure.core.exceptions import HttpResponseError
        from azure.data.tables import UpdateMode

        for row in reservation.rows:
            existing = self._get(reservation.partition, row)
            if existing is None:
                continue
            try:
                if row.startswith("cooldown|"):
                    if existing["holder"] == reservation.holder:
                        self.table.delete_entity(
                            reservation.partition, row, etag=existing.metadata["etag"],
                            match_condition=MatchConditions.IfNotModified,
                        )  # fmt: skip
                    continue
                holders = [h for h in json.loads(existing["holders"]) if h != reservation.holder]
                entity = {**existing, "holders": json.dumps(holders), "count": len(holders)}
                self.table.update_entity(
                    entity, mode=UpdateMode.REPLACE, etag=existing.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )  # fmt: skip
            except HttpResponseError:
                pass


def _write(entity: dict[str, Any], existing: Any, update_mode: Any, match: Any) -> tuple[Any, ...]:
    """Insert-if-absent for a new row, replace-if-unchanged for an existing one."""
    if existing is None:
        return ("create", entity)
    return ("update", entity, {"mode": update_mode.REPLACE, "etag": existing.metadata["etag"],
                               "match_condition": match.IfNotModified})  # fmt: skip


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


_stores: dict[tuple[str, str], GuardrailStore] = {}
_stores_lock = threading.Lock()


def store_for(settings: Settings) -> GuardrailStore:
    """One store per storage account and table, per worker."""
    key = (settings.environ.get(settings.storage_connection) or settings.storage_connection, settings.guardrail_table)
    with _stores_lock:
        if key not in _stores:
            _stores[key] = GuardrailStore(settings)
        return _stores[key]
