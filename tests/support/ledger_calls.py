"""Count the ledger's storage calls while they still go to Azurite.

The wire is Azurite's own; this wraps the real `TableClient` only to count which operations the
ledger makes (a spy, not a fake: every call is passed through unchanged).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from azure.core.exceptions import ResourceExistsError

from shared.worker import current_engine


class CountingTable:
    def __init__(self, table: Any) -> None:
        self._table = table
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._table, name)
        if not callable(attribute):
            return attribute

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return attribute(*args, **kwargs)

        return counted


@contextmanager
def ledger_calls() -> Iterator[Counter[str]]:
    """The worker's ledger table calls made inside the block, by operation (create_entity, ...). The
    table is created first, as it is once deployed, so its creation is not counted."""
    ledger = current_engine().ledger
    real = ledger.table
    try:
        real.create_table()
    except ResourceExistsError:
        pass
    counting = CountingTable(real)
    ledger.table = counting
    try:
        yield counting.calls
    finally:
        ledger.table = real
