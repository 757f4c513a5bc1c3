"""The ledger in memory: the decisions of shared/ledger/base.py over a dict. For dry runs (nothing is
written anywhere) and for tests of the engine that need no storage."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from typing import Any

from shared.ledger.base import Ledger, RecordChanged, RecordExists, id_matches
from shared.ledger.records import LedgerRecord, RejectedRecord


class MemoryLedger(Ledger):
    def __init__(self) -> None:
        self._records: dict[tuple[str, str, int], tuple[LedgerRecord, int]] = {}
        self._rejections: dict[str, RejectedRecord] = {}
        self._payloads: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def _insert(self, record: LedgerRecord) -> str:
        with self._lock:
            if _key(record) in self._records:
                raise RecordExists
            self._records[_key(record)] = (_copy(record), 1)
            return "1"

    def _read(self, record: LedgerRecord) -> tuple[LedgerRecord, str]:
        with self._lock:
            stored, version = self._records[_key(record)]
            return _copy(stored), str(version)

    def _replace(self, record: LedgerRecord, version: str, what: str) -> str:
        with self._lock:
            current = self._records[_key(record)][1]
            if str(current) != version:
                raise RecordChanged
            self._records[_key(record)] = (_copy(record), current + 1)
            return str(current + 1)

    def annotate(self, event_key: str, route: str, position: int, detail: str, extra: dict[str, Any]) -> None:
        with self._lock:
            key = (event_key, route, position, "")
            stored, version = self._records[key]
            self._records[key] = (replace(stored, detail=detail, extra=dict(extra)), version)

    def records(
        self,
        event_id: str | None = None,
        since: datetime | None = None,
        *,
        route: str | None = None,
        status: str | None = None,
        prefix: bool = False,
    ) -> Iterator[LedgerRecord]:
        with self._lock:
            stored = [_copy(record) for record, _ in self._records.values()]
        for record in stored:
            if (
                id_matches(record.event_id, event_id, prefix)
                and (since is None or (record.updated is not None and record.updated >= since))
                and (route is None or record.route == route)
                and (status is None or record.status == status)
            ):
                yield record

    def _store_rejection(self, key: str, rejection: RejectedRecord) -> str:
        with self._lock:
            self._rejections[key] = rejection
        return key

    def _store_payload(self, name: str, payload: bytes) -> None:
        with self._lock:
            self._payloads[name] = payload

    def _load_payload(self, name: str) -> bytes:
        with self._lock:
            return self._payloads[name]

    def rejections(
        self, event_id: str | None = None, since: datetime | None = None, *, prefix: bool = False
    ) -> Iterator[RejectedRecord]:
        with self._lock:
            stored = list(self._rejections.values())
        for rejection in stored:
            if id_matches(rejection.event_id, event_id, prefix) and (
                since is None or (rejection.received is not None and rejection.received >= since)
            ):
                yield rejection


def _key(record: LedgerRecord) -> tuple[str, str, int, str]:
    return record.event_key, record.route, record.position, record.tag


def _copy(record: LedgerRecord) -> LedgerRecord:
    """Stored records are not the caller's objects: what a claim changes later is not yet recorded."""
    return replace(record, extra=dict(record.extra))
