"""The rows of the expectations table (EXPECT_TABLE), laid out so that the timer reads only what is due.

Three kinds of partition:
- one per expectation, `x-<route>|<hash>`: the hash of the route and its `same:` values (a follow-up
  expectation) or of the route and the window's date (a recurring one). It holds the `state` row
  (`status` open / fired / closed / late, `seq` counting the expectation's openings, `due`, the
  opening event, `fire_until` while the timer delivers it) and, for `at_least`, a `seen|<seq>|<event>`
  row per matching event (keyed by event id: a redelivered event counts once);
- one per minute of due time, `due-YYYYMMDDHHMM`, with a row per expectation (or expired state to
  remove) falling due in that minute. The timer reads the partitions from the start up to the
  current minute: a range of partition keys, so it reads the due rows and nothing else, however many
  expectations are open. A due row leaves its partition once handled;
- one per route with a recurring expectation, `ref-<route>`: its last matching event, the workspace
  and experiment a missed window links to.

Every change to a state row is guarded by its etag (`ExpectationRows._update_state`), so an opening, a
follow-up and the timer racing on one expectation settle on one outcome: the loser reads the row again
and sees what happened. What to write is decided by `ExpectationStore` (expectations.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shared.events.model import AmlEvent, EventRejected
from shared.events.parse import parse_event
from shared.ledger.records import LedgerUnavailable
from shared.noise.stored import stored_event_json
from shared.platform.errors import first_line
from shared.platform.storage import insert_entity
from shared.platform.tables import table_key
from shared.settings import Settings

if TYPE_CHECKING:
    from shared.routing.expect_windows import Window

logger = logging.getLogger("aml_events.noise.expectations")

STATE_ROW = "state"
DUE_PREFIX = "due-"
FIRE, COLLECT = "fire", "collect"  # what a due row asks for: fire the expectation, or remove expired state
_ETAG_ATTEMPTS = 20
_MISSING_VALUE = "(none)"


@dataclass(frozen=True)
class Due:
    """A due row: the expectation (partition and opening number) to fire, or expired state to remove."""

    partition: str  # its own `due-…` partition
    row: str
    state: str  # the expectation's partition
    seq: int
    kind: str  # FIRE or COLLECT
    route: str


def bucket(moment: datetime) -> str:
    return DUE_PREFIX + moment.astimezone(UTC).strftime("%Y%m%d%H%M")


def state_partition(route: str, values: tuple[tuple[str, str], ...]) -> str:
    digest = hashlib.sha256(json.dumps([route, values]).encode("utf-8")).hexdigest()[:32]
    return "x-" + table_key(f"{route}|{digest}")


def window_partition(route: str, window: Window) -> str:
    return state_partition(route, (("window", window.key),))


def _due_row(partition: str, seq: int, kind: str) -> str:
    return f"{partition}|{seq}|{kind}"


def same_values(event: AmlEvent, paths: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    from shared.routing.conditions import event_view, resolve

    view = event_view(event)
    values = []
    for path in paths:
        value = resolve(view, path)
        values.append((path, str(value) if isinstance(value, (str, int, float, bool)) else _MISSING_VALUE))
    return tuple(values)


def event_from(text: Any) -> AmlEvent | None:
    if not text:
        return None
    try:
        return parse_event(json.loads(text))
    except (ValueError, EventRejected) as error:  # written by this app: only a bug gets here
        logger.error("expectation event cannot be read back: %s", error)
        return None


class ExpectationRows:
    """Reads and writes the rows: storage failures become LedgerUnavailable, absent and existing rows
    are the callers' to handle."""

    def __init__(self, settings: Settings, now: Callable[[], datetime]) -> None:
        self.settings = settings
        self.now = now
        self.table_name = settings.expect_table

    @property
    def table(self) -> Any:
        from shared.platform.storage import existing_table

        return existing_table(self.settings, self.table_name)

    def due(self) -> list[Due]:
        """The due rows of every minute up to now: only the partitions that are due are read."""
        rows = self._call("reading due expectations", lambda: list(self.table.query_entities(
            "PartitionKey ge @first and PartitionKey le @last",
            parameters={"first": DUE_PREFIX, "last": bucket(self.now())},
        )))  # fmt: skip
        return [Due(row["PartitionKey"], row["RowKey"], row["state"], int(row["seq"]), row["kind"], row["route"])
                for row in rows]  # fmt: skip

    def _seen(self, partition: str, seq: int) -> int:
        prefix = f"seen|{seq:06d}|"
        rows = self.table.query_entities(
            "PartitionKey eq @p and RowKey ge @lo and RowKey lt @hi",
            parameters={"p": partition, "lo": prefix, "hi": prefix[:-1] + "}"}, select=["RowKey"],
        )  # fmt: skip
        return sum(1 for _ in rows)

    def _remember_reference(self, route: str, event: AmlEvent) -> None:
        """The last matching event per route: the workspace and experiment a missed window links to."""
        entity = {"PartitionKey": f"ref-{table_key(route)}", "RowKey": "last", "event": stored_event_json(event)}
        self._call("recording an expectation's event", self.table.upsert_entity, entity)

    def _reference(self, route: str) -> AmlEvent | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            entity = self.table.get_entity(f"ref-{table_key(route)}", "last")
        except ResourceNotFoundError:
            return None
        return event_from(entity.get("event"))

    def _state(self, partition: str) -> dict[str, Any] | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return dict(self._call("reading an expectation", self.table.get_entity, partition, STATE_ROW))
        except ResourceNotFoundError:
            return None

    def _update_state(self, partition: str, change: Callable[[dict[str, Any] | None], dict[str, Any] | None]) -> None:
        """Apply `change` to the state row (None: absent) under its etag, reading again when another
        writer won; `change` returns the row to write, or None to write nothing."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError

        for _ in range(_ETAG_ATTEMPTS):
            try:
                existing = self._call("reading an expectation", self.table.get_entity, partition, STATE_ROW)
                row: dict[str, Any] | None = dict(existing)
                etag = existing.metadata["etag"]
            except ResourceNotFoundError:
                row, etag = None, None
            written = change(row)
            if written is None:
                return
            try:
                if etag is None:
                    self._call("opening an expectation", insert_entity, self.table, written)
                else:
                    self._call("updating an expectation", self.table.update_entity, written, mode="replace",
                               etag=etag, match_condition=MatchConditions.IfNotModified)  # fmt: skip
                return
            except (ResourceExistsError, ResourceModifiedError):
                continue
        raise LedgerUnavailable(f"expectation {partition}: too many concurrent writers; Event Grid will redeliver")

    def _add_due(self, due: datetime, partition: str, seq: int, kind: str, route: str) -> None:
        self._insert_ignoring_existing({"PartitionKey": bucket(due), "RowKey": _due_row(partition, seq, kind),
                                        "state": partition, "seq": seq, "kind": kind, "route": route})  # fmt: skip

    def _remove_due(self, due: datetime, partition: str, seq: int, kind: str) -> None:
        self._delete(bucket(due), _due_row(partition, seq, kind))

    def _delete_due(self, due: Due) -> None:
        self._delete(due.partition, due.row)

    def _delete(self, partition: str, row: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            self._call("removing an expectation row", self.table.delete_entity, partition, row)
        except ResourceNotFoundError:
            pass

    def _insert_ignoring_existing(self, entity: dict[str, Any]) -> None:
        from azure.core.exceptions import ResourceExistsError

        try:
            self._call("writing an expectation", insert_entity, self.table, entity)
        except ResourceExistsError:
            pass

    @staticmethod
    def _call(what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Storage failures become LedgerUnavailable (Event Grid redelivers; the timer tries next minute);
        conflicts and absences are the callers' to handle."""
        from azure.core.exceptions import (
            AzureError,
            ResourceExistsError,
            ResourceModifiedError,
            ResourceNotFoundError,
        )

        try:
            return fn(*args, **kwargs)
        except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
            raise
        except AzureError as error:
            raise LedgerUnavailable(f"expectation storage unavailable while {what}: {first_line(error)}") from error
