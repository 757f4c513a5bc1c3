"""Counters in Azure Table Storage (the ledger's account): the guardrails of actions that start
compute (`cooldown` with `key`, `max_per_day`: handlers/azureml/guardrails.py) and the gate's
`repeat_interval`.

Counts live in one partition per route action: a row per cooldown key and a row per UTC day. Both
rows are read, judged and written back in ONE entity-group transaction guarded by their etags (or
by insert-if-absent), so two deliveries of different events racing for the last slot cannot both
win: the loser's transaction fails, it reads again and is skipped. A reservation remembers the
ledger key that holds it, so the redelivery of the same event passes its own reservation instead
of being stopped by it.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.actions import ActionSkipped
from shared.platform.clock import now
from shared.platform.tables import table_key
from shared.settings import Settings

_RESERVE_ATTEMPTS = 8


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
        from shared.platform.storage import table_service

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
    key = (settings.storage_connection_string or settings.storage_connection, settings.guardrail_table)
    with _stores_lock:
        if key not in _stores:
            _stores[key] = GuardrailStore(settings)
        return _stores[key]
