"""Parsing whole payloads (a delivery body, a file): every element an event or a RejectedInput. Used
by the tests to check that no payload makes parsing raise."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from shared.events.model import AmlEvent, EventRejected
from shared.events.parse import parse_event


@dataclass(frozen=True)
class RejectedInput:
    """A payload element that could not be parsed into an event."""

    reason: str
    raw: Any
    event_id: str | None = None
    event_type: str | None = None


def parse_payload(body: bytes | str) -> Iterator[AmlEvent | RejectedInput]:
    """Every event in a JSON body holding one event or an array; bad elements become RejectedInput."""
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError as error:
            yield RejectedInput(f"payload is not UTF-8 text ({error.reason} at byte {error.start})", body)
            return
    try:
        decoded = json.loads(body)
    except (ValueError, RecursionError) as error:
        yield RejectedInput(f"payload is not JSON: {error}", body)
        return
    for item in decoded if isinstance(decoded, list) else [decoded]:
        yield parse_or_reject(item)


def parse_or_reject(item: Any) -> AmlEvent | RejectedInput:
    try:
        return parse_event(item)
    except EventRejected as rejected:
        event_type = item.get("eventType") or item.get("type") if isinstance(item, Mapping) else None
        return RejectedInput(
            str(rejected), item, rejected.event_id, event_type if isinstance(event_type, str) else None
        )
