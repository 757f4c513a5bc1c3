"""The action ledger: one record per (event, route, action), claimed before acting, completed after.

Event Grid delivers at least once, sometimes twice at the same moment. Claiming with an
insert-if-absent makes the first worker the only one to act; the outcome written after acting lets a
redelivery skip what is done and retry what failed; a lease lets a claim left by a dead worker be
taken over. `Ledger` is the interface; `TableLedger` (Azure Table Storage, Azurite locally) is the
implementation.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from shared.settings import Settings

# Statuses a record can have. `running` is a live claim; `done` and `skipped` are final.
RUNNING, DONE, SKIPPED, FAILED = "running", "done", "skipped", "failed"
FINAL_STATUSES = (DONE, SKIPPED)

WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"
_MAX_TEXT = 16_000  # Table Storage allows 64 KiB per string property; keep well inside it
_FORBIDDEN_KEY_CHARS = str.maketrans({c: f"%{ord(c):02X}" for c in "/\\#?%\t\n\r"})


class LedgerUnavailable(RuntimeError):
    """Storage could not be reached: no action may run without its claim."""


def table_key(text: str) -> str:
    """Table Storage forbids / \\ # ? and control characters in keys; escape them reversibly."""
    return text.translate(_FORBIDDEN_KEY_CHARS)


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class LedgerRecord:
    event_id: str
    route: str
    position: int
    kind: str
    target: str
    status: str
    attempts: int = 0
    detail: str = ""
    event_type: str = ""
    function: str = ""
    created: datetime | None = None
    updated: datetime | None = None
    lease_until: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Stable idempotency key of this action for this event."""
        return f"{self.event_id}/{self.route}/{self.position}"


@dataclass
class Claim:
    """The right to run one action, held until `finish`. `previous` is what an earlier try left."""

    record: LedgerRecord
    etag: str
    previous: LedgerRecord | None = None


@dataclass
class AlreadyHandled:
    """Another delivery has done this action, or holds a live claim on it."""

    record: LedgerRecord

    @property
    def in_progress(self) -> bool:
        return self.record.status == RUNNING


class Ledger(Protocol):
    def claim(self, record: LedgerRecord, lease_seconds: float) -> Claim | AlreadyHandled: ...

    def finish(self, claim: Claim, status: str, detail: str, attempts: int, extra: dict[str, Any]) -> None: ...

    def record_rejection(self, function: str, reason: str, raw: Any, event_id: str | None) -> str: ...

    def records(self, event_id: str | None = None, since: datetime | None = None) -> Iterator[LedgerRecord]: ...


class TableLedger:
    def __init__(self, settings: Settings) -> None:
        from azure.core.exceptions import AzureError

        from shared.storage import table_service

        self._azure_error = AzureError
        self.settings = settings
        try:
            service = table_service(settings)
            self.table = service.get_table_client(settings.ledger_table)
            self.rejected = service.get_table_client(settings.rejected_table)
        except Exception as error:  # a malformed connection string surfaces here
            raise LedgerUnavailable(f"cannot use the ledger storage: {error}") from error
        self._created = False
        self._create_lock = threading.Lock()

    # Every storage call goes through here, so an outage is one clear error, never half an action.
    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            self._ensure_tables()
            return fn(*args, **kwargs)
        except self._azure_error as error:
            if type(error).__name__ in ("ResourceExistsError", "ResourceModifiedError", "ResourceNotFoundError"):
                raise
            message = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise LedgerUnavailable(f"ledger storage unavailable during {what}: {message}") from error

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
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError

        record.status, record.created, record.updated = RUNNING, now(), now()
        record.lease_until = now() + timedelta(seconds=lease_seconds)
        entity = _to_entity(record)
        try:
            metadata = self._call("claim", self.table.create_entity, entity)
            return Claim(record, metadata["etag"])
        except ResourceExistsError:
            pass
        existing = self._call("claim", self.table.get_entity, entity["PartitionKey"], entity["RowKey"])
        previous = _from_entity(existing)
        lease_live = previous.lease_until is not None and previous.lease_until > now()
        if previous.status in FINAL_STATUSES or (previous.status == RUNNING and lease_live):
            return AlreadyHandled(previous)
        # A failed try, or a claim whose worker died: take it over, unless another worker just did.
        record.created, record.attempts = previous.created, previous.attempts
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

    def record_rejection(self, function: str, reason: str, raw: Any, event_id: str | None) -> str:
        text = raw if isinstance(raw, str) else repr(raw) if isinstance(raw, bytes) else json.dumps(raw, default=str)
        digest = hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:32]
        row = table_key(f"{function}|{event_id or digest}")
        entity = {
            "PartitionKey": now().strftime("%Y-%m-%d"),
            "RowKey": row,
            "function": function,
            "event_id": event_id or "",
            "reason": reason[:_MAX_TEXT],
            "payload": text[:_MAX_TEXT],
            "payload_truncated": len(text) > _MAX_TEXT,
            "payload_sha256": digest,
            "received": now(),
        }
        self._call("recording a rejected event", self.rejected.upsert_entity, entity)
        return row

    def records(self, event_id: str | None = None, since: datetime | None = None) -> Iterator[LedgerRecord]:
        filters, parameters = [], {}
        if event_id:
            filters.append("PartitionKey eq @pk")
            parameters["pk"] = table_key(event_id)
        if since:
            filters.append("updated ge @since")
            parameters["since"] = since
        query = " and ".join(filters)
        entities = self.table.query_entities(query, parameters=parameters) if query else self.table.list_entities()
        try:
            self._ensure_tables()
            for entity in entities:
                yield _from_entity(entity)
        except self._azure_error as error:
            raise LedgerUnavailable(f"ledger storage unavailable while listing records: {error}") from error


def _to_entity(record: LedgerRecord) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": table_key(record.event_id),
        "RowKey": table_key(f"{record.route}|{record.position:03d}"),
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
    for name in ("created", "updated", "lease_until"):
        if getattr(record, name) is not None:
            entity[name] = getattr(record, name)
    return entity


def _from_entity(entity: Any) -> LedgerRecord:
    def when(name: str) -> datetime | None:
        value = entity.get(name)
        return datetime.fromtimestamp(value.timestamp(), UTC) if value is not None else None

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
        created=when("created"),
        updated=when("updated"),
        lease_until=when("lease_until"),
        extra=extra,
    )
