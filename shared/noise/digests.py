"""Groups and their digests, in Table Storage (DIGEST_TABLE): what `group:` on a route collects.

One partition per group (route and the values of its `group.by` paths) holds
- the group row: `seq` (the number of the next digest), `pending` (members not yet in a digest),
  `due` (when the oldest pending member has waited `wait`; absent when nothing is pending), and
  `flushing`/`flush_until` while a digest is being delivered;
- a member row per event (keyed by event id, so a redelivery adds nothing), with the event and the
  digest it went into ("" while pending).

Every change to the group row is guarded by its etag, so adding members and flushing never lose
each other's writes. A flush (the timer, or the event that fills a group to `max`):
1. takes the group: `flushing` = the next digest id, `seq` + 1 (a crashed flush is resumed with the
   same id once `flush_until` has passed);
2. claims up to `max` pending members for that digest (entity-group transactions of up to 100 each);
3. has the engine deliver the digest through the route's actions (ledger key = digest id: once);
4. releases the group with the new `pending` count and `due`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.events.digest import DIGEST_PREFIX, DigestEvent
from shared.events.model import AmlEvent, EventRejected
from shared.events.parse import parse_event
from shared.ledger.records import LedgerUnavailable
from shared.noise.stored import stored_event_json
from shared.platform.clock import now, utc
from shared.platform.errors import first_line
from shared.platform.storage import insert_entity
from shared.platform.tables import storable, table_key
from shared.routing.conditions import event_view, resolve
from shared.routing.noise_options import GroupSpec
from shared.settings import Settings

logger = logging.getLogger("aml_events.noise.digests")

GROUP_ROW = "group"
MEMBER_PREFIX = "m|"
MAX_FLUSH_TRIES = 5  # a digest whose actions keep failing is retried this often, a minute apart
RETRY_SECONDS = 60.0
_TRANSACTION_SIZE = 100  # Table Storage's limit on the operations of one entity-group transaction
_ETAG_ATTEMPTS = 50  # a burst of one sweep's runs all write the same group row
_MISSING_VALUE = "(none)"
_SHOWN_VALUE_CHARS = 200


@dataclass(frozen=True)
class Admission:
    """What adding an event to its group did."""

    group: str  # the group, for people: `failed-runs: ExperimentName=sweep-42`
    partition: str
    due: datetime
    full: bool  # the group reached `max`: flush it now
    added: bool  # False: the event was already a member (a redelivery)


def group_values(event: AmlEvent, spec: GroupSpec) -> tuple[tuple[str, str], ...]:
    view = event_view(event)
    values = []
    for path in spec.by:
        value = resolve(view, path)
        values.append((path, _MISSING_VALUE if not isinstance(value, (str, int, float, bool)) else str(value)))
    return tuple(values)


def describe_group(route: str, values: tuple[tuple[str, str], ...]) -> str:
    return f"{route}: " + ", ".join(f"{path}={value}" for path, value in values) if values else route


class DigestStore:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def table(self) -> Any:
        from shared.platform.storage import existing_table

        return existing_table(self.settings, self.settings.digest_table)

    # ---- adding ------------------------------------------------------------------------------------

    def add(self, route: str, spec: GroupSpec, event: AmlEvent) -> Admission:
        """Make `event` a pending member of its group; raises LedgerUnavailable if storage fails."""
        from azure.core.exceptions import AzureError, ResourceExistsError

        values = group_values(event, spec)
        partition = _partition(route, values)  # of the whole values; what is shown of them is cut
        values = tuple((path, _shown(value)) for path, value in values)
        member = {"PartitionKey": partition, "RowKey": MEMBER_PREFIX + event.key, "digest": "", "received": now(),
                  "event": stored_event_json(event), "derived_from": storable(event.derived_from or "")}  # fmt: skip
        try:
            try:
                insert_entity(self.table, member)
                added = True
            except ResourceExistsError:
                added = False
            due, pending = self._update_group(
                partition, lambda row: _admit(row, spec, added), initial=_new_group(partition, route, values)
            )
        except AzureError as error:
            raise LedgerUnavailable(f"digest storage unavailable while grouping: {first_line(error)}") from error
        return Admission(describe_group(route, values), partition, due, pending >= spec.max, added)

    def _update_group(
        self, partition: str, change: Callable[[dict[str, Any]], None], initial: dict[str, Any] | None = None
    ) -> tuple[datetime, int]:
        """Apply `change` to the group row under its etag, reading again when another writer won."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError

        for _ in range(_ETAG_ATTEMPTS):
            try:
                existing = self.table.get_entity(partition, GROUP_ROW)
                row = dict(existing)
                etag = existing.metadata["etag"]
            except ResourceNotFoundError:
                if initial is None:
                    raise
                row, etag = dict(initial), None
            change(row)
            try:
                if etag is None:
                    insert_entity(self.table, row)
                else:
                    self.table.update_entity(
                        row, mode="replace", etag=etag, match_condition=MatchConditions.IfNotModified
                    )
            except (ResourceExistsError, ResourceModifiedError):
                continue
            return _utc(row.get("due")), int(row.get("pending", 0))
        raise LedgerUnavailable(f"group {partition}: too many concurrent writers; Event Grid will redeliver")

    # ---- flushing ---------------------------------------------------------------------------------

    def due_groups(self) -> list[str]:
        """Partitions of groups that are due, or whose flush was left unfinished."""
        at = now()
        due = self.table.query_entities(
            "RowKey eq @row and due le @now", parameters={"row": GROUP_ROW, "now": at}, select=["PartitionKey"]
        )
        stuck = self.table.query_entities(
            "RowKey eq @row and flushing ne @empty and flush_until le @now",
            parameters={"row": GROUP_ROW, "empty": "", "now": at}, select=["PartitionKey"],
        )  # fmt: skip
        return sorted({entity["PartitionKey"] for entity in [*due, *stuck]})

    def take(self, partition: str, spec: GroupSpec, lease_seconds: float, *, force: bool = False) -> DigestEvent | None:
        """Steps 1 and 2: the digest to deliver, or None when the group is not due or someone else has it."""
        taken: dict[str, str] = {}

        def start(row: dict[str, Any]) -> None:
            at = now()
            taken.clear()
            if row.get("flushing"):
                if _utc(row.get("flush_until")) > at:
                    return  # another flush is delivering this group
                taken["digest"] = row["flushing"]  # resume a flush that did not finish
            elif row.get("pending", 0) > 0 and (force or _utc(row.get("due")) <= at):
                taken["digest"] = f"{DIGEST_PREFIX}{row['route']}:{partition[-16:]}:{row['seq']}"
                row["seq"] += 1
            else:
                return
            row["flushing"], row["flush_until"] = taken["digest"], at + timedelta(seconds=lease_seconds)

        row_before = self._group_row(partition)
        if row_before is None:
            return None
        self._update_group(partition, start)
        if not taken:
            return None
        digest_id = taken["digest"]
        self._claim_members(partition, digest_id, spec.max)
        members = [self._member_event(entity) for entity in self._members(partition, digest_id)]
        members = [member for member in members if member is not None]
        values = tuple(tuple(pair) for pair in json.loads(row_before.get("group_values") or "[]"))
        if not members:
            self.release(partition, spec)
            return None
        return DigestEvent.of(digest_id, row_before["route"], values, members)

    def _claim_members(self, partition: str, digest_id: str, limit: int) -> None:
        from azure.core import MatchConditions
        from azure.data.tables import TableTransactionError, UpdateMode

        for _ in range(_ETAG_ATTEMPTS):
            already = sum(1 for _ in self._members(partition, digest_id, select=["RowKey"]))
            pending = sorted(self._members(partition, ""), key=lambda entity: entity["received"])
            chosen = pending[: max(0, limit - already)]
            if not chosen:
                return
            operations = [
                ("update", {"PartitionKey": partition, "RowKey": entity["RowKey"], "digest": digest_id},
                 {"mode": UpdateMode.MERGE, "etag": entity.metadata["etag"],
                  "match_condition": MatchConditions.IfNotModified})
                for entity in chosen
            ]  # fmt: skip
            try:
                # One entity-group transaction takes at most 100 operations: a larger digest is claimed in
                # several. Should one lose a race, the next round counts what is claimed already and goes on.
                for start in range(0, len(operations), _TRANSACTION_SIZE):
                    self.table.submit_transaction(operations[start : start + _TRANSACTION_SIZE])
                return
            except TableTransactionError:
                continue
        raise LedgerUnavailable(f"group {partition}: could not claim members for {digest_id}")

    def release(self, partition: str, spec: GroupSpec, *, failed: bool = False) -> None:
        """Step 4: done with the digest; if its delivery `failed`, it is tried again a minute later
        (up to MAX_FLUSH_TRIES times; the ledger keeps what failed)."""
        pending = sorted(self._members(partition, "", select=["received"]), key=lambda entity: entity["received"])

        def finish(row: dict[str, Any]) -> None:
            tries = int(row.get("flush_tries", 0)) + 1 if failed else 0
            if failed and tries < MAX_FLUSH_TRIES:
                row["flush_until"], row["flush_tries"] = now() + timedelta(seconds=RETRY_SECONDS), tries
                return
            row["flushing"], row["pending"], row["flush_tries"] = "", len(pending), 0
            row.pop("flush_until", None)
            row.pop("due", None)
            if pending:
                row["due"] = _utc(pending[0]["received"]) + timedelta(seconds=spec.wait)

        self._update_group(partition, finish)

    def abandon(self, partition: str) -> None:
        """Stop flushing a group whose route no longer groups; its members stay in the table."""

        def stop(row: dict[str, Any]) -> None:
            row["flushing"], row["pending"] = "", 0
            row.pop("due", None)
            row.pop("flush_until", None)

        self._update_group(partition, stop)

    def group_route(self, partition: str) -> str | None:
        row = self._group_row(partition)
        return None if row is None else row.get("route")

    def _group_row(self, partition: str) -> dict[str, Any] | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return dict(self.table.get_entity(partition, GROUP_ROW))
        except ResourceNotFoundError:
            return None

    def _members(self, partition: str, digest_id: str, select: list[str] | None = None) -> Iterator[Any]:
        return self.table.query_entities(
            "PartitionKey eq @partition and RowKey ge @prefix and RowKey lt @after and digest eq @digest",
            parameters={"partition": partition, "prefix": MEMBER_PREFIX, "after": "m}", "digest": digest_id},
            select=select,
        )

    def _member_event(self, entity: Any) -> AmlEvent | None:
        try:
            event = parse_event(json.loads(entity["event"]))
            return replace(event, derived_from=entity.get("derived_from") or None)
        except (ValueError, EventRejected) as error:  # written by this app: only a bug gets here
            logger.error("digest member %s cannot be read back: %s", entity["RowKey"], error)
            return None


def _partition(route: str, values: tuple[tuple[str, str], ...]) -> str:
    digest = hashlib.sha256(json.dumps([route, values]).encode("utf-8")).hexdigest()[:32]
    return table_key(f"{route}|{digest}")


def _new_group(partition: str, route: str, values: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    return {"PartitionKey": partition, "RowKey": GROUP_ROW, "route": route, "group_values": json.dumps(values),
            "seq": 0, "pending": 0, "flushing": ""}  # fmt: skip


def _admit(row: dict[str, Any], spec: GroupSpec, added: bool) -> None:
    if not added:
        return
    row["pending"] = int(row.get("pending", 0)) + 1
    if row.get("due") is None:
        row["due"] = now() + timedelta(seconds=spec.wait)


def _shown(value: str) -> str:
    """A group value as records and digests show it (the partition is keyed by all of it)."""
    return value if len(value) <= _SHOWN_VALUE_CHARS else value[: _SHOWN_VALUE_CHARS - 1] + "…"


def _utc(value: Any) -> datetime:
    """A stored time in UTC; none stored: never."""
    return datetime.max.replace(tzinfo=UTC) if value is None else utc(value)
