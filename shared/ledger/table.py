"""The ledger in Azure Table Storage (Azurite locally): the I/O of shared/ledger/base.py.

Records are entities keyed by event (PartitionKey) and route action (RowKey); a claim is an
insert-if-absent, a takeover or an outcome a replace guarded by the entity's etag. Rejected inputs
are entities of their own table, partitioned by day; payloads too long for a property are blobs
(shared/ledger/rejections.py).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, TypeVar

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, ResourceExistsError, ResourceModifiedError, ResourceNotFoundError

from shared.ledger.base import Ledger, RecordChanged, RecordExists, after_prefix
from shared.ledger.records import MAX_TEXT, WORKER_ID, LedgerRecord, LedgerUnavailable, RejectedRecord
from shared.ledger.rejections import RejectedPayloads
from shared.platform.clock import utc
from shared.platform.errors import first_line
from shared.platform.storage import StorageNotConfigured, insert_entity, table_service
from shared.platform.tables import derived_key, storable, storable_entity, table_key
from shared.settings import Settings

T = TypeVar("T")


class TableLedger(Ledger):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        try:
            service = table_service(settings)
            self.table = service.get_table_client(settings.ledger_table)
            self.rejected = service.get_table_client(settings.rejected_table)
        except StorageNotConfigured:
            raise
        except Exception as error:  # a malformed connection string surfaces here
            raise LedgerUnavailable(f"cannot use the ledger storage: {error}") from error
        self.payloads = RejectedPayloads(settings)
        # The tables exist after deployment (infra/ creates them); one that is missing (a fresh Azurite,
        # a deleted table) is created when storage first answers 404, so a warm worker pays no round trip.
        self._created = True
        self._create_lock = threading.Lock()

    # Every storage call goes through here, so an outage is one clear error, never half an action.
    def _call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        for last_try in (False, True):
            try:
                self._ensure_tables()
                return fn(*args, **kwargs)
            except (ResourceExistsError, ResourceModifiedError):
                raise
            except ResourceNotFoundError as error:
                if last_try:
                    raise _unavailable(what, error) from error
                # The storage lost its tables (an emulator restarted, a table deleted): create them again.
                self._created = False
            except AzureError as error:
                raise _unavailable(what, error) from error
        raise AssertionError("unreachable: the last try returns or raises")

    def _ensure_tables(self) -> None:
        if self._created:
            return
        with self._create_lock:
            if not self._created:
                for table in (self.table, self.rejected):
                    try:
                        table.create_table()
                    except ResourceExistsError:
                        pass
                self._created = True

    # ---- records -----------------------------------------------------------------------------------------

    def _insert(self, record: LedgerRecord) -> str:
        try:
            return self._call("claim", insert_entity, self.table, _to_entity(record))["etag"]
        except ResourceExistsError:
            raise RecordExists from None

    def _read(self, record: LedgerRecord) -> tuple[LedgerRecord, str]:
        entity = self._call("claim", self.table.get_entity, *_keys(record))
        return _from_entity(entity), entity.metadata["etag"]

    def _replace(self, record: LedgerRecord, version: str, what: str) -> str:
        try:
            metadata = self._call(
                what,
                self.table.update_entity,
                _to_entity(record),
                mode="replace",
                etag=version,
                match_condition=MatchConditions.IfNotModified,
            )
        except ResourceModifiedError:
            raise RecordChanged from None
        return metadata["etag"]

    def annotate(self, event_key: str, route: str, position: int, detail: str, extra: dict[str, Any]) -> None:
        entity = {"PartitionKey": event_key, "RowKey": table_key(f"{route}|{position:03d}"),
                  "detail": detail[:MAX_TEXT], "extra": json.dumps(extra, default=str)[:MAX_TEXT]}  # fmt: skip
        self._call("annotating a record", self.table.update_entity, storable_entity(entity), mode="merge")

    def records(
        self,
        event_id: str | None = None,
        since: datetime | None = None,
        *,
        route: str | None = None,
        status: str | None = None,
        prefix: bool = False,
    ) -> Iterator[LedgerRecord]:
        """Ledger records, filtered by the table service (not here); `prefix`: of events whose id
        starts with `event_id`."""
        if prefix and event_id:
            first = table_key(event_id)
            selections = [{"PartitionKey ge @first": first, "PartitionKey lt @after": after_prefix(first)}]
        else:
            written_id = storable(event_id) if event_id else None
            selections = [
                {"PartitionKey eq @pk": key, "event_id eq @event_id": written_id} for key in _partitions(event_id)
            ]
        for selection in selections:
            conditions = {
                **selection,
                "updated ge @since": since,
                "route eq @route": route,
                "status eq @status": status,
            }
            for entity in self._query(self.table, "listing records", conditions):
                yield _from_entity(entity)

    # ---- rejected inputs -----------------------------------------------------------------------------------

    def _store_rejection(self, key: str, rejection: RejectedRecord) -> str:
        row = table_key(key)
        assert rejection.received is not None
        entity = {
            "PartitionKey": rejection.received.strftime("%Y-%m-%d"),
            "RowKey": row,
            "function": rejection.function,
            "event_id": rejection.event_id,
            "event_type": rejection.event_type,
            "reason": rejection.reason,
            "payload": rejection.payload,
            "payload_size": rejection.payload_size,
            "payload_sha256": rejection.payload_sha256,
            "payload_blob": rejection.payload_blob,
            "received": rejection.received,
        }
        self._call("recording a rejected event", self.rejected.upsert_entity, storable_entity(entity))
        return row

    def _store_payload(self, name: str, payload: bytes) -> None:
        self._call("storing a rejected payload", self.payloads.upload, name, payload)

    def _load_payload(self, name: str) -> bytes:
        return self._call("reading a rejected payload", self.payloads.download, name)

    def rejections(
        self, event_id: str | None = None, since: datetime | None = None, *, prefix: bool = False
    ) -> Iterator[RejectedRecord]:
        first, after = (event_id, after_prefix(event_id)) if prefix and event_id else (None, None)
        conditions = {"event_id eq @event_id": None if prefix else event_id, "event_id ge @first": first,
                      "event_id lt @after": after, "received ge @since": since}  # fmt: skip
        for entity in self._query(self.rejected, "listing rejected events", conditions):
            yield RejectedRecord(
                function=entity.get("function", ""),
                event_id=entity.get("event_id", ""),
                reason=entity.get("reason", ""),
                received=_when(entity, "received"),
                payload=entity.get("payload", ""),
                payload_size=int(entity.get("payload_size") or len(entity.get("payload", "").encode("utf-8"))),
                payload_sha256=entity.get("payload_sha256", ""),
                payload_blob=entity.get("payload_blob", ""),
                event_type=entity.get("event_type", ""),
            )

    def _query(self, table: Any, what: str, conditions: dict[str, Any]) -> Iterator[Any]:
        """Entities matching every condition whose value is set (`"field op @name": value`)."""
        used = {condition: value for condition, value in conditions.items() if value is not None}
        parameters = {condition.rsplit("@", 1)[1]: value for condition, value in used.items()}
        query = " and ".join(used)
        try:
            self._ensure_tables()
            entities = table.query_entities(query, parameters=parameters) if query else table.list_entities()
            yield from entities
        except ResourceNotFoundError:
            return  # the table does not exist yet: nothing has been recorded
        except AzureError as error:
            raise LedgerUnavailable(f"ledger storage unavailable while {what}: {error}") from error


def _unavailable(what: str, error: AzureError) -> LedgerUnavailable:
    return LedgerUnavailable(f"ledger storage unavailable during {what}: {first_line(error)}")


def _keys(record: LedgerRecord) -> tuple[str, str]:
    row = f"{record.route}|{record.position:03d}" + (f"|{record.tag}" if record.tag else "")
    return record.event_key, table_key(row)


def _partitions(event_id: str | None) -> list[str | None]:
    """Where the records of `event_id` are: its key, and for an id `<parent>/<name>` (a derived
    event's, e.g. a model monitor's drift signal) the derived key of the parent (AmlEvent.key)."""
    if event_id is None:
        return [None]
    parent, slash, _ = event_id.rpartition("/")
    return [table_key(event_id), *([derived_key(table_key(parent))] if slash else [])]


def _when(entity: Any, name: str) -> datetime | None:
    value = entity.get(name)
    return utc(value) if value is not None else None


def _to_entity(record: LedgerRecord) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": _keys(record)[0],
        "RowKey": _keys(record)[1],
        "event_id": record.event_id,
        "route": record.route,
        "position": record.position,
        "kind": record.kind,
        "target": record.target,
        "status": record.status,
        "attempts": record.attempts,
        "detail": record.detail[:MAX_TEXT],
        "event_type": record.event_type,
        "function": record.function,
        "worker": WORKER_ID,
        "extra": json.dumps(record.extra, default=str)[:MAX_TEXT],
    }
    if record.event and len(record.event) <= MAX_TEXT:
        entity["event"] = record.event
    if record.tag:
        entity["tag"] = record.tag
    for name in ("created", "updated", "lease_until"):
        if getattr(record, name) is not None:
            entity[name] = getattr(record, name)
    return storable_entity(entity)


def _from_entity(entity: Any) -> LedgerRecord:
    try:
        extra = json.loads(entity.get("extra") or "{}")
    except ValueError:
        extra = {}
    return LedgerRecord(
        event_id=entity.get("event_id", ""),
        event_key=entity.get("PartitionKey", ""),
        route=entity.get("route", ""),
        position=int(entity.get("position", 0)),
        kind=entity.get("kind", ""),
        target=entity.get("target", ""),
        status=entity.get("status", ""),
        attempts=int(entity.get("attempts", 0)),
        detail=entity.get("detail", ""),
        event_type=entity.get("event_type", ""),
        function=entity.get("function", ""),
        created=_when(entity, "created"),
        updated=_when(entity, "updated"),
        lease_until=_when(entity, "lease_until"),
        extra=extra,
        event=entity.get("event", ""),
        tag=entity.get("tag", ""),
    )
