"""Event Grid dead letters in the storage account: read them, tell why they died, mark them replayed.

Event Grid writes an event it gave up on to a blob in the dead-letter container: the original event
plus `deadLetterReason`, `deliveryAttempts`, `lastDeliveryOutcome`, `publishTime` and
`lastDeliveryAttemptTime` (lower case in CloudEvents). A blob holds one event or an array.
`scripts/replay.py --dead-letter` replays them through the functions; a blob is marked replayed
(blob metadata) only when nothing in it is left to do.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.events.model import get_ci
from shared.platform.clock import now
from shared.platform.storage import blob_service
from shared.settings import Settings

REPLAYED_METADATA = "replayed"  # blob metadata: when every action of every event in it was settled


@dataclass(frozen=True)
class DeadLetterInfo:
    """Why Event Grid gave up on one event."""

    reason: str | None
    attempts: int | None
    last_outcome: str | None
    publish_time: str | None
    last_attempt_time: str | None

    @classmethod
    def of(cls, item: Any) -> DeadLetterInfo:
        if not isinstance(item, dict):
            return cls(None, None, None, None, None)
        attempts = get_ci(item, "deliveryAttempts")
        return cls(
            reason=_text(get_ci(item, "deadLetterReason")),
            attempts=attempts if isinstance(attempts, int) and not isinstance(attempts, bool) else None,
            last_outcome=_text(get_ci(item, "lastDeliveryOutcome")),
            publish_time=_text(get_ci(item, "publishTime")),
            last_attempt_time=_text(get_ci(item, "lastDeliveryAttemptTime")),
        )

    def summary(self) -> str:
        text = self.reason or "dead-lettered (no reason given)"
        if self.attempts is not None:
            text += f" after {self.attempts} attempt{'s' if self.attempts != 1 else ''}"
        if self.last_outcome:
            text += f", last outcome {self.last_outcome}"
        return text


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class DeadLetterBlob:
    name: str
    last_modified: datetime
    replayed: str | None  # when it was marked replayed, if it was


class DeadLetters:
    """One dead-letter container of the app's storage account (AzureWebJobsStorage; Azurite locally)."""

    def __init__(self, settings: Settings, container: str | None = None) -> None:
        self.container_name = container or settings.dead_letter_container
        self.container = blob_service(settings).get_container_client(self.container_name)

    def blobs(self, since: datetime | None = None) -> Iterator[DeadLetterBlob]:
        """Blobs written at or after `since`, oldest first."""
        found = [
            DeadLetterBlob(blob.name, blob.last_modified, (blob.metadata or {}).get(REPLAYED_METADATA))
            for blob in self.container.list_blobs(include=["metadata"])
            if since is None or blob.last_modified >= since
        ]
        yield from sorted(found, key=lambda blob: (blob.last_modified, blob.name))

    def read(self, blob: DeadLetterBlob) -> bytes:
        return self.container.download_blob(blob.name).readall()

    def mark_replayed(self, blob: DeadLetterBlob) -> None:
        client = self.container.get_blob_client(blob.name)
        metadata = dict(client.get_blob_properties().metadata or {})
        metadata[REPLAYED_METADATA] = now().isoformat(timespec="seconds")
        client.set_blob_metadata(metadata)


def dead_letter_infos(body: bytes) -> dict[str | None, DeadLetterInfo]:
    """event id -> why it was dead-lettered, for every event in a blob that can be read."""
    try:
        decoded = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return {}
    items = decoded if isinstance(decoded, list) else [decoded]
    return {
        (item.get("id") if isinstance(item, dict) and isinstance(item.get("id"), str) else None): DeadLetterInfo.of(
            item
        )
        for item in items
    }
