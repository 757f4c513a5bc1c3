"""An event kept in a table property (digest members, expectations): its envelope as JSON, within
the property's size whatever the event holds."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from shared.events.model import AmlEvent, get_ci

_ENVELOPE_KEYS = ("id", "eventType", "subject", "topic", "eventTime", "data", "dataVersion")
# JSON is written ASCII: a string property holds 64 KiB of UTF-16, 32,768 characters.
MAX_STORED_CHARS = 30_000


def stored_event_json(event: AmlEvent) -> str:
    """The event as a table row keeps it (a digest member, an expectation's opening event): whole when
    it fits a property, else with long texts and lists cut (a digest lists members briefly) and
    `"trimmed": true`; as a last resort only the fields its type declares. The id and type are always
    whole: it must be the same event."""
    written = event.to_dict()
    envelope = {key: written[key] for key in _ENVELOPE_KEYS}
    text = json.dumps(envelope, default=str)
    if len(text) <= MAX_STORED_CHARS:
        return text
    declared = {key: get_ci(event.data, key) for _, key, _, _ in event.FIELDS if get_ci(event.data, key) is not None}
    for data, chars, items in ((envelope["data"], 1024, 100), (envelope["data"], 128, 10), (declared, 128, 10)):
        trimmed = {**envelope, "subject": _cut(envelope["subject"], 1024, items),
                   "data": _cut(data, chars, items), "trimmed": True}  # fmt: skip
        text = json.dumps(trimmed, default=str)
        if len(text) <= MAX_STORED_CHARS:
            return text
    raise AssertionError("unreachable: an id and declared fields, cut, fit a property")


def _cut(value: Any, chars: int, items: int) -> Any:
    if isinstance(value, str):
        return value if len(value) <= chars else value[: chars - 1] + "…"
    if isinstance(value, Mapping):
        return {str(key)[:chars]: _cut(item, chars, items) for key, item in list(value.items())[: items * 10]}
    if isinstance(value, (list, tuple)):
        return [_cut(item, chars, items) for item in value[:items]]
    return value
