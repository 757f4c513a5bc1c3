"""The ledger's decisions, once for every backend.

Event Grid delivers at least once, sometimes twice at the same moment. Claiming with an
insert-if-absent makes the first worker the only one to act; the outcome written after acting lets a
redelivery skip what is done and retry what failed; a lease lets a claim left by a dead worker be
taken over. An outcome known before acting (a held action, a `log` line) is written by the claiming
insert itself (`settle`): one write instead of two.

A backend does the I/O only: insert a record if absent, read it with its version, replace it if
that version is still current (shared/ledger/table.py: Azure Table Storage; shared/ledger/memory.py:
in memory, for dry runs and tests).
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from shared.events.model import MAX_ID_CHARS
from shared.ledger.records import (
    FINAL_STATUSES,
    MAX_TEXT,
    RUNNING,
    AlreadyHandled,
    Claim,
    LedgerRecord,
    RejectedRecord,
)
from shared.ledger.rejections import payload_bytes
from shared.platform.clock import now


class RecordExists(Exception):
    """The backend's insert found a record with the same key."""


class RecordChanged(Exception):
    """The backend's replace found the record changed since the version it was given."""


class Ledger(ABC):
    def claim(self, record: LedgerRecord, lease_seconds: float) -> Claim | AlreadyHandled:
        """The right to run the action: a `running` record with a lease, completed by `finish`."""
        record.status = RUNNING
        return self._insert_or_take_over(record, now() + timedelta(seconds=lease_seconds))

    def settle(self, record: LedgerRecord) -> Claim | AlreadyHandled:
        """Claim and complete in one write: `record` already carries its final status, detail and
        attempts. The returned claim can still `finish` with another outcome (the action failed after all)."""
        return self._insert_or_take_over(record, None)

    def _insert_or_take_over(self, record: LedgerRecord, lease_until: datetime | None) -> Claim | AlreadyHandled:
        record.created = record.updated = now()
        record.lease_until = lease_until
        try:
            return Claim(record, self._insert(record))
        except RecordExists:
            pass
        previous, version = self._read(record)
        if not may_take_over(previous):
            return AlreadyHandled(previous)
        # A failed try, or a claim whose worker died: take it over, unless another worker just did.
        record.created = previous.created
        record.attempts += previous.attempts
        try:
            return Claim(record, self._replace(record, version, "claim takeover"), previous)
        except RecordChanged:
            return AlreadyHandled(self._read(record)[0])

    def finish(self, claim: Claim, status: str, detail: str, attempts: int, extra: dict[str, Any]) -> None:
        record = claim.record
        record.status, record.detail, record.attempts = status, detail, attempts
        record.updated, record.lease_until = now(), None
        record.extra.update(extra)
        try:
            self._replace(record, claim.etag, "recording the outcome")
        except RecordChanged:
            pass  # our lease ran out and another worker took the claim over; its outcome wins

    def record_rejection(
        self, function: str, reason: str, raw: Any, event_id: str | None, event_type: str | None = None
    ) -> str:
        """Keep a rejected input whole: inline when it fits a record, else stored beside it. Redeliveries
        of one input make one record; its key is returned."""
        payload = payload_bytes(raw)
        digest = hashlib.sha256(payload).hexdigest()
        received = now()
        preview = payload[:MAX_TEXT].decode("utf-8", "replace")
        blob = ""
        if preview.encode("utf-8") != payload:  # too long for a record, or not UTF-8 text
            blob = f"{received:%Y/%m/%d}/{digest}.bin"
            self._store_payload(blob, payload)
        rejection = RejectedRecord(
            function,
            (event_id or "")[:MAX_ID_CHARS],
            reason[:MAX_TEXT],
            received,
            preview,
            len(payload),
            digest,
            blob,
            event_type or "",
        )
        return self._store_rejection(f"{function}|{event_id or ''}|{digest[:32]}", rejection)

    def rejected_payload(self, rejection: RejectedRecord) -> bytes:
        """The whole payload of a rejected input, as it arrived."""
        if not rejection.payload_blob:
            return rejection.payload.encode("utf-8")
        return self._load_payload(rejection.payload_blob)

    # ---- what a backend implements ---------------------------------------------------------------------

    @abstractmethod
    def _insert(self, record: LedgerRecord) -> str:
        """Insert `record` if its key is absent; its version. Raises RecordExists."""

    @abstractmethod
    def _read(self, record: LedgerRecord) -> tuple[LedgerRecord, str]:
        """The stored record with `record`'s key, and its version."""

    @abstractmethod
    def _replace(self, record: LedgerRecord, version: str, what: str) -> str:
        """Replace the stored record if it is still at `version`; the new version. Raises RecordChanged.
        `what` names the step in an error message."""

    @abstractmethod
    def _store_rejection(self, key: str, rejection: RejectedRecord) -> str: ...

    @abstractmethod
    def _store_payload(self, name: str, payload: bytes) -> None: ...

    @abstractmethod
    def _load_payload(self, name: str) -> bytes: ...

    @abstractmethod
    def annotate(self, event_key: str, route: str, position: int, detail: str, extra: dict[str, Any]) -> None:
        """Add to a settled record what happened later (a grouped event: the digest it went into).
        `event_key`: the event's storage key (AmlEvent.key, LedgerRecord.event_key)."""

    @abstractmethod
    def records(
        self,
        event_id: str | None = None,
        since: datetime | None = None,
        *,
        route: str | None = None,
        status: str | None = None,
        prefix: bool = False,
    ) -> Iterator[LedgerRecord]:
        """Records matching every filter given; `prefix`: of the events whose id starts with `event_id`."""

    @abstractmethod
    def rejections(
        self, event_id: str | None = None, since: datetime | None = None, *, prefix: bool = False
    ) -> Iterator[RejectedRecord]: ...


def after_prefix(prefix: str) -> str:
    """The first string after every string that starts with `prefix` (the end of a range query)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def id_matches(event_id: str, wanted: str | None, prefix: bool) -> bool:
    return wanted is None or event_id == wanted or (prefix and event_id.startswith(wanted))


def may_take_over(previous: LedgerRecord) -> bool:
    """Whether a new delivery may claim an action over `previous`: it failed, or its claim's lease ran out."""
    lease_live = previous.lease_until is not None and previous.lease_until > now()
    return not (previous.status in FINAL_STATUSES or (previous.status == RUNNING and lease_live))
