"""Write a valid sample event of one type, with the fields you set, for replay, preview and route tests.

    python scripts/make_event.py RunStatusChanged data.RunStatus=Failed data.ExperimentName=prod-churn
    python scripts/make_event.py DatasetDriftDetected data.DriftCoefficient=0.45 --schema cloudevents -o drift.json

The event starts from the complete example of its type (shared/example_events.json) with a new id
and the current time. PATH=VALUE sets `id`, `subject`, `topic`, `eventTime` or `data.<Field>` (the
field's spelling as Azure sends it, matched case-insensitively; `data.RunTags.<tag>` sets one tag,
dots and all). VALUE is read as YAML: `0.45` is a number, `null` is null, `[a, b]` a list. The result
is checked by the app's own parser before it is written.
"""

from __future__ import annotations

import copy
import json
import sys
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from scripts.cli import parser_from_doc

EXAMPLES = Path(__file__).resolve().parent.parent / "shared" / "example_events.json"

ENVELOPE_KEYS = ("id", "subject", "topic", "eventTime")
# CloudEvents spells the Event Grid envelope differently.
_CLOUDEVENTS_NAMES = {"eventType": "type", "topic": "source", "eventTime": "time", "dataVersion": "dataversion"}


class SampleProblem(ValueError):
    """A field that cannot be set as written; the message says why and what there is."""


def _object_keys(event_type: str) -> set[str]:
    """The data keys of the type that hold free-form maps (tags, properties): the rest of a path is one key."""
    from shared.events.model import EVENT_CLASSES

    return {key.lower() for _, key, kind, _ in EVENT_CLASSES[event_type].FIELDS if kind == "object"}


def _set_data(event_type: str, data: dict[str, Any], path: str, value: Any) -> None:
    key, _, rest = path.partition(".")
    existing = next((name for name in data if name.lower() == key.lower()), None)
    if existing is None:
        from shared.events.model import EVENT_CLASSES

        known = [written for _, written, _, _ in EVENT_CLASSES[event_type].FIELDS]
        if key.lower() not in {name.lower() for name in known}:
            short = event_type.rsplit(".", 1)[-1]
            raise SampleProblem(f"data.{key}: a {short} event has no such field (it has: {', '.join(known)})")
        existing = next(name for name in known if name.lower() == key.lower())
    if not rest:
        data[existing] = value
        return
    if key.lower() not in _object_keys(event_type):
        raise SampleProblem(f"data.{existing} is not a map of tags or properties: set it whole, data.{existing}=...")
    inner = data.get(existing)
    data[existing] = {**(inner if isinstance(inner, Mapping) else {}), rest: value}


def build_event(
    event_type: str, values: Mapping[str, Any] | None = None, *, schema: str = "eventgrid", at: datetime | None = None
) -> dict[str, Any]:
    """A JSON-ready event of `event_type` (short or full name) with `values` set by path.
    Raises SampleProblem naming what is wrong; the result always parses."""
    from shared.events.catalog import KNOWN_EVENT_TYPES, full_event_type, short_event_type
    from shared.events.model import EventRejected
    from shared.events.parse import parse_event

    full = full_event_type(event_type)
    if full is None:
        known = ", ".join(short_event_type(t) for t in KNOWN_EVENT_TYPES)
        raise SampleProblem(f"unknown event type {event_type!r} (known: {known})")
    examples = json.loads(EXAMPLES.read_text(encoding="utf-8"))
    event = copy.deepcopy(examples[full])
    event.pop("metadataVersion", None)
    event["id"] = str(uuid.uuid4())
    event["eventTime"] = (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    for path, value in (values or {}).items():
        root, _, rest = str(path).partition(".")
        if root.lower() == "data" and rest:
            _set_data(full, event["data"], rest, value)
        elif root in ENVELOPE_KEYS and not rest:
            event[root] = value
        else:
            raise SampleProblem(f"{path}: set one of {', '.join(ENVELOPE_KEYS)} or data.<Field>")
    try:
        parse_event(event)
    except EventRejected as rejected:
        raise SampleProblem(f"the event would be rejected: {rejected}") from None
    if schema == "cloudevents":
        event = {"specversion": "1.0", **{_CLOUDEVENTS_NAMES.get(k, k): v for k, v in event.items()}}
    return event


def parse_assignment(text: str) -> tuple[str, Any]:
    path, equals, value = text.partition("=")
    if not equals or not path.strip():
        raise SampleProblem(f"{text!r}: write PATH=VALUE, e.g. data.RunStatus=Failed")
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError:
        parsed = value
    # YAML reads 2025-03-04 as a date; events carry text there.
    return path.strip(), parsed if isinstance(parsed, (str, int, float, bool, list, dict, type(None))) else value


def main(argv: list[str] | None = None) -> int:
    parser = parser_from_doc(__doc__)
    parser.add_argument("event_type", metavar="TYPE", help="RunStatusChanged, RunCompleted, ModelRegistered, ...")
    parser.add_argument("values", nargs="*", metavar="PATH=VALUE", help="fields to set, e.g. data.RunStatus=Failed")
    parser.add_argument("--schema", choices=("eventgrid", "cloudevents"), default="eventgrid")
    parser.add_argument("-o", "--out", metavar="FILE", help="write here instead of standard output")
    args = parser.parse_args(argv)
    try:
        values = dict(parse_assignment(text) for text in args.values)
        event = build_event(args.event_type, values, schema=args.schema)
    except SampleProblem as problem:
        print(f"make_event: {problem}", file=sys.stderr)
        return 2
    text = json.dumps(event, indent=2, ensure_ascii=False) + "\n"
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {args.out}: {event.get('eventType') or event.get('type')} {event['id']}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
