"""What the ledger records: one `LedgerRecord` per (event, route, action), the `Claim` that lets one
delivery act on it, and `RejectedRecord`s of inputs that could not be handled."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.platform.tables import table_key

# Statuses a record can have. `running` is a live claim; `done`, `skipped` and `grouped` (held for a
# digest, shared/noise/digests.py) are final.
RUNNING, DONE, SKIPPED, FAILED, GROUPED = "running", "done", "skipped", "failed", "grouped"
FINAL_STATUSES = (DONE, SKIPPED, GROUPED)

WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"
# Longest text a record keeps in one field (details, reasons, inline payloads): Table Storage allows
# 64 KiB per string property, and every backend keeps the same records.
MAX_TEXT = 16_000


class LedgerUnavailable(RuntimeError):
    """Storage could not be reached: no action may run without its claim."""


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
    # The event as received (JSON), so that `history.py resend` can run the action again; "" when too
    # large to keep or not an event Azure sent (a digest).
    event: str = ""
    # Set on a deliberate re-run (`resend-<time>`): a record and idempotency key of its own.
    tag: str = ""
    event_key: str = ""  # the event's storage key (AmlEvent.key); "" for the key of `event_id`

    def __post_init__(self) -> None:
        self.event_key = self.event_key or table_key(self.event_id)

    @property
    def key(self) -> str:
        """Stable idempotency key of this action for this event: the same for every delivery, never
        the same for two events or two actions (each part is a storable key, which holds no `/`)."""
        tagged = f"/{table_key(self.tag)}" if self.tag else ""
        return f"{self.event_key}/{table_key(self.route)}/{self.position}{tagged}"


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


@dataclass
class RejectedRecord:
    """An input that could not be handled, with what it looked like. `payload` is the whole payload
    when it fits a table property; otherwise a preview, and the whole payload is in `payload_blob`."""

    function: str
    event_id: str
    reason: str
    received: datetime | None
    payload: str
    payload_size: int  # bytes of the whole payload
    payload_sha256: str
    payload_blob: str = ""  # blob name in the rejected container, when the payload is stored there
    event_type: str = ""
