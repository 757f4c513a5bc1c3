"""Delivering one JSON event to the app's function as the Functions host would, collecting what the
engine reported (the `deliver` fixture in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from scripts.local_host import binding_for
from shared.ledger.records import LedgerRecord
from shared.pipeline.reports import ActionReport, observe
from shared.worker import DeliveryFailed, current_engine


@dataclass
class Delivery:
    reports: list[ActionReport]
    error: DeliveryFailed | None  # raised by the function: Event Grid would redeliver

    def statuses(self) -> list[str]:
        return [report.status for report in self.reports]


def deliver_event(functions: dict[str, Callable[[Any], None]], function: str, event: dict[str, Any]) -> Delivery:
    with observe() as reports:
        try:
            functions[function](binding_for(event))
        except DeliveryFailed as error:
            return Delivery(reports, error)
    return Delivery(reports, None)


def only_record(event_id: str) -> LedgerRecord:
    """The one ledger record of an event in the worker's engine (a test with one route and action)."""
    (record,) = current_engine().ledger.records(event_id=event_id)
    return record
