"""Delivering due digests: what the `flush_digests` timer function runs (and an event that fills
its group to `max`). The group bookkeeping is in shared/digests.py, the delivery in the engine."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.engine import ActionReport, Engine

logger = logging.getLogger("aml_events")

FLUSH_FUNCTION = "flush_digests"


def flush_due(engine: Engine) -> list[ActionReport]:
    """Every group that is due (or whose flush was left unfinished): one digest each."""
    if engine.gate is None:
        return []
    reports: list[ActionReport] = []
    for partition in engine.gate.digests.due_groups():
        reports += flush_group(engine, partition)
    return reports


def flush_group(engine: Engine, partition: str, *, force: bool = False) -> list[ActionReport]:
    """Deliver the group's next digest if it is due (`force`: full, deliver now); the reports."""
    from shared.ledger import FAILED

    assert engine.gate is not None
    store = engine.gate.digests
    route_name = store.group_route(partition)
    route = engine.routes().route(route_name) if route_name else None
    if route is None or route.noise.group is None:
        logger.warning("group %s: route %s no longer groups events; its pending members are left", partition,
                       route_name)  # fmt: skip
        store.abandon(partition)
        return []
    spec = route.noise.group
    digest = store.take(partition, spec, engine.settings.lease_seconds, force=force)
    if digest is None:
        return []
    reports = engine.deliver_digest(digest, route)
    failed = any(report.status == FAILED or report.in_progress for report in reports)
    store.release(partition, spec, failed=failed)
    return reports
