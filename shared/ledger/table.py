"""The action ledger: one record per (event, route, action), claimed before acting, completed after.

Event Grid delivers at least once, sometimes twice at the same moment. Claiming with an
insert-if-absent makes the first worker the only one to act; the outcome written after acting lets a
redelivery skip what is done and retry what failed; a lease lets a claim left by a dead worker be
taken over. An outcome known before acting (a held action, a `log` line) is written by the claiming
insert itself (`settle`): one write instead of two. `Ledger` (shared/ledger/records.py) is the
interface; `TableLedger` (Azure Table Storage, Azurite locally) is the implementation.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.ledger.records import (
    FINAL_STATUSES,
    RUNNING,
    WORKER_ID,
    AlreadyHandled,
    Claim,
    LedgerRecord,
    LedgerUnavailable,
    RejectedRecord,
)
from shared.platform.clock import now
from shared.platform.storage import insert_entity
from shared.platform.tables import storable_entity, table_key
from shared.settings import Settings

_MAX_TEXT = 16_000  # Table Storage allows 64 KiB per string property; keep well inside it


class TableLedger:
    def __init__(self, settings: Settings) -> None:
        from azure.core.exceptions import AzureError

        from shared.platform.storage import StorageNotConfigured, table_service

        self._azure_error = AzureError
        self.settings = settings
        try:
            service = table_service(settings)
            self.table = service.get_table_client(settings.ledger_table)
            self.rejected = service.get_table_client(settings.rejected_table)
        except StorageNotConfigured:
            raise
        except Exception as error:  # a malformed connection string surfaces here
            raise LedgerUnavailable(f"cannot use the ledger storage: {error}") from error
        # The tables exist after deployment (infra/ creates them); one that is missing (a fresh Azurite,
        # a deleted table) is created when storage first answers 404, so a warm worker pays no round trip.
        self._created = True
        self._create_lock = threading.Lock()

    # Every storage call goes through here, so an outage is one clear error, never half an action.
    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        for last_try in (False, True):
            try:
                self._ensure_tables()
                return fn(*args, **kwargs)
            except self._azure_error as error:
                name = type(error).__name__
                if name in ("ResourceExistsError", "ResourceModifiedError"):
                    raise
                if name == "ResourceNotFoundError" and not last_try:
                    # The storage lost its tables (an emulator restarted, a table deleted): create them again.
                    self._created = False
                    continue
                message = str(error).splitlines()[0] if str(error) else name
                raise LedgerUnavailable(f"ledger storage unavailable during {what}: {message}") from error
        raise AssertionError("unreachable: the last try returns or raises")

    def _ensure_tables(self) -> None:
        if self._created:
            return
        with self._create_lock:
            if not self._created:
                for table in (self.table, self.rejected):
                    try:
                        table.create_table()
                    except self._azure_error as error:
                        if type(error).__name__ != "ResourceExistsError":
                            raise
                self._created = True

    def claim(self, record: LedgerRecord, lease_seconds: float) -> Claim | AlreadyHandled:
        """The right to run the action: a `running` record with a lease, completed by `finish`."""
        record.status = RUNNING
        return self._insert_or_take_over(record, now() + timedelta(seconds=lease_seconds))

    def settle(self, record: LedgerRecord) -> Claim | AlreadyHandled:
        """Claim and complete in one write: `record` already carries its final status, detail and
        attempts. The returned claim can still `finish` with another outcome (the action failed after all)."""
        return self._insert_or_take_over(record, None)

    def _insert_or_take_over(self, record: LedgerRecord, lease_until: datetime | None) -> Claim | AlreadyHandled:
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError

        record.created = record.updated = now()
        record.lease_until = lease_until
        entity = _to_entity(record)
        try:
            metadata = self._call("claim", insert_entity, self.table, entity)
            return Claim(record, metadata["etag"])
        except ResourceExistsError:
            pass
        existing = self._call("claim", self.table.get_entity, entity["PartitionKey"], entity["RowKey"])
        previous = _from_entity(existing)
        lease_live = previous.lease_until is not None and previous.lease_until > now()
        if previous.status in FINAL_STATUSES or (previous.status == RUNNING and lease_live):
            return AlreadyHandled(previous)
        # A failed try, or a claim whose worker died: take it over, unless another worker just did.
        record.created = previous.created
        record.attempts += previous.attempts
        entity = _to_entity(record)
        try:
            metadata = self._call(
                "claim takeover",
                self.table.update_entity,
                entity,
                mode="replace",
                etag=existing.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
            )
        except ResourceModifiedError:
            return AlreadyHandled(
                _from_entity(self._call("claim", self.table.get_entity, entity["PartitionKey"], entity["RowKey"]))
            )
        return Claim(record, metadata["etag"], previous)

    def finish(self, claim: Claim, status: str, detail: str, attempts: int, extra: dict[str, Any]) -> None:
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError

        record = claim.record
        record.status, record.detail, record.attempts = status, detail, attempts
        record.updated, record.lease_until = now(), None
        record.extra.update(extra)
        try:
            self._call(
                "recording the outcome",
                self.table.update_entity,
                _to_entity(record),
                mode="replace",
                etag=claim.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except ResourceModifiedError:
            # Our lease ran out and another worker took the claim over; its outcome wins.
            pass

    def annotate(self, event_id: str, route: str, position: int, detail: str, extra: dict[str, Any]) -> None:
        """Add to a settled record what happened later (a grouped event: the digest it went into)."""
        entity = {"PartitionKey": table_key(event_id), "RowKey": table_key(f"{route}|{position:03d}"),
                  "detail": detail[:_MAX_TEXT], "extra": json.dumps(extra, default=str)[:_MAX_TEXT]}  # fmt: skip
        self._call("annotating a record", self.table.update_entity, storable_entity(entity), mode="merge")

    def record_rejection(
        self, function: str, reason: str, raw: Any, event_id: str | None, event_type: str | None = None
    ) -> str:
        """Keep a rejected input whole: inline when it fits a table property, else in a blob."""
        payload = _payload_bytes(raw)
        digest = hashlib.sha256(payload).hexdigest()
        row = table_key(f"{function}|{event_id or ''}|{digest[:32]}")  # redeliveries of one input: one record
        received = now()
        preview = payload[:_MAX_TEXT].decode("utf-8", "replace")
        blob = ""
        if preview.encode("utf-8") != payload:  # too long for a property, or not UTF-8 text
            blob = f"{received:%Y/%m/%d}/{digest}.bin"
            self._call("storing a rejected payload", self._upload_rejected, blob, payload)
        entity = {
            "PartitionKey": received.strftime("%Y-%m-%d"),
            "RowKey": row,
            "function": function,
            "event_id": event_id or "",
            "event_type": event_type or "",
            "reason": reason[:_MAX_TEXT],
            "payload": preview,
            "payload_size": len(payload),
            "payload_sha256": digest,
            "payload_blob": blob,
            "received": received,
        }
        self._call("recording a rejected event", self.rejected.upsert_entity, storable_entity(entity))
        return row

    def _upload_rejected(self, name: str, payload: bytes) -> None:
        from azure.core.exceptions import ResourceExistsError

        from shared.platform.storage import blob_service

        container = blob_service(self.settings).get_container_client(self.settings.rejected_container)
        try:
            container.upload_blob(name, payload, overwrite=True)
        except self._azure_error as error:
            if type(error).__name__ != "ResourceNotFoundError":
                raise
            try:
                container.create_container()
            except ResourceExistsError:
                pass
            container.upload_blob(name, payload, overwrite=True)

    def rejected_payload(self, rejection: RejectedRecord) -> bytes:
        """The whole payload of a rejected input, as it arrived."""
        if not rejection.payload_blob:
            return rejection.payload.encode("utf-8")
        from shared.platform.storage import blob_service

        container = blob_service(self.settings).get_container_client(self.settings.rejected_container)
        return self._call(
            "reading a rejected payload", lambda: container.download_blob(rejection.payload_blob).readall()
        )

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
        pk = table_key(event_id) if event_id else None
        first, after = (pk, _after_prefix(pk)) if prefix and pk else (None, None)
        conditions = {"PartitionKey eq @pk": None if prefix else pk, "PartitionKey ge @first": first,
                      "PartitionKey lt @after": after, "updated ge @since": since, "route eq @route": route,
                      "status eq @status": status}  # fmt: skip
        for entity in self._query(self.table, "listing records", conditions):
            yield _from_entity(entity)

    def rejections(
        self, event_id: str | None = None, since: datetime | None = None, *, prefix: bool = False
    ) -> Iterator[RejectedRecord]:
        first, after = (event_id, _after_prefix(event_id)) if prefix and event_id else (None, None)
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
        except self._azure_error as error:
            if type(error).__name__ == "ResourceNotFoundError":
                return  # the table does not exist yet: nothing has been recorded
            raise LedgerUnavailable(f"ledger storage unavailable while {what}: {error}") from error


def _after_prefix(prefix: str) -> str:
    """The first string after every string starting with `prefix` (for a range query)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _payload_bytes(raw: Any) -> bytes:
    """A rejected input as bytes: exactly as received when it was bytes or text, else as JSON."""
    if isinstance(raw, bytes):
        return raw
    if isinstance(raw, str):
        return raw.encode("utf-8", "surrogatepass")
    return json.dumps(raw, default=str).encode("utf-8")


def _when(entity: Any, name: str) -> datetime | None:
    value = entity.get(name)
    return datetime.fromtimestamp(value.timestamp(), UTC) if value is not None else None


def _to_entity(record: LedgerRecord) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": table_key(record.event_id),
        "RowKey": table_key(f"{record.route}|{record.position:03d}" + (f"|{record.tag}" if record.tag else "")),
        "event_id": record.event_id,
        "route": record.route,
        "position": record.position,
        "kind": record.kind,
        "target": record.target,
        "status": record.status,
        "attempts": record.attempts,
        "detail": record.detail[:_MAX_TEXT],
        "event_type": record.event_type,
        "function": record.function,
        "worker": WORKER_ID,
        "extra": json.dumps(record.extra, default=str)[:_MAX_TEXT],
    }
    if record.event and len(record.event) <= _MAX_TEXT:
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
