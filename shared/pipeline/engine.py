"""parse -> match -> hold -> act -> record, for one delivered event (and for a due digest).

An event that cannot be understood is recorded as rejected and the function returns normally (no
24-hour redelivery of poison). Each matching route's actions run concurrently, each behind its
ledger claim, with retries inside the invocation's time budget. The worker (shared/worker.py) builds
the engine, injecting its stages, and raises after recording if any action failed, so Event Grid
redelivers and the ledger skips whatever is already done.

Over 300 lines because it is one thing: every way an action runs (an event, a digest, a missed
expectation, a resend) goes through the same claim -> attempt -> record path here, while the timers'
bookkeeping is in their stages (noise/digests.py, noise/expectations.py, pipeline/expectations.py).
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from shared.actions import ActionContext, ActionFailed, ActionSkipped
from shared.events.model import AmlEvent, EventRejected
from shared.events.monitoring import derived_events
from shared.events.parse import parse_event, raw_for_record, written_event_type
from shared.ledger.base import Ledger
from shared.ledger.records import DONE, FAILED, SKIPPED, AlreadyHandled, Claim, LedgerRecord, LedgerUnavailable
from shared.noise.gate import Gate, Hold
from shared.pipeline.enricher import Enricher
from shared.pipeline.reports import PLANNED, REJECTED, UNROUTED, ActionReport, emit
from shared.platform.clock import now
from shared.platform.network import deadline_at
from shared.routing.explain import unrouted_reason
from shared.routing.routes import Route, RouteAction, RouteTable
from shared.settings import Settings

if TYPE_CHECKING:
    from shared.events.digest import DigestEvent  # digests load only for routes with `group:`
    from shared.events.expectation import ExpectationMissed
    from shared.noise.expectations import ExpectationStore

logger = logging.getLogger("aml_events.pipeline.engine")

FLUSH_FUNCTION = "flush_digests"
CHECK_FUNCTION = "check_expectations"
RESEND = "resend"  # the `function` and tag of a deliberate re-run (`history.py resend`)
# Time kept back from the budget to record outcomes after the last attempt.
RECORDING_RESERVE_SECONDS = 1.0
# A claim's lease runs at least this long past the end of the invocation's budget (every path of the
# invocation ends by then; the margin covers clock differences between workers).
LEASE_MARGIN_SECONDS = 5.0


class Engine:
    def __init__(
        self,
        settings: Settings,
        routes: Callable[[], RouteTable],
        ledger: Ledger,
        *,
        dry_run: bool = False,
        gate: Gate | None = None,
        enricher: Enricher | None = None,
        expectations: ExpectationStore | None = None,
    ) -> None:
        self.settings = settings
        self.routes = routes
        self.ledger = ledger  # a dry run's is a MemoryLedger: nothing is written anywhere
        self.dry_run = dry_run  # report what would run; run, claim and hold nothing
        self.gate = gate  # silences, mutes, repeat intervals and groups; None: every route acts
        self.enricher = enricher  # run/model details for routes with `enrich: true`; None: not fetched
        self.expectations = expectations  # routes with `expect:`; None: they are not followed (dry run)
        # A route's actions run side by side; with the worker running that many deliveries at once, the pool
        # must not be what holds them back (slow receivers, a deployed PYTHON_THREADPOOL_THREAD_COUNT above 32).
        self._pool = ThreadPoolExecutor(max_workers=max(32, 2 * settings.worker_threads), thread_name_prefix="action")

    def handle(self, function: str, raw: Any) -> list[ActionReport]:
        started = time.monotonic()
        deadline = started + self.settings.invocation_budget_seconds
        try:
            event = parse_event(raw)
            if event.function != function:
                raise EventRejected(
                    "eventType", f"{event.event_type} is taken by function {event.function}, not {function}", event.id
                )
        except EventRejected as rejected:
            return [self.reject(function, rejected, raw)]
        table = self.routes()
        expected = self._expectations(function, event, table, deadline)
        matched = table.matching(event)
        acting = self._with_details(event, matched, deadline)
        unrouted = []
        if not acting and not expected:
            why = "no route matches the run/model details" if matched else unrouted_reason(self.routes(), event)
            unrouted.append(ActionReport(event.id, event.event_type, function, None, None, UNROUTED, why))
            emit(unrouted[0])
        # Events derived from this one (a v2 model monitor's drift signal) take their own routes in
        # this invocation; one that no route takes is not reported.
        for derived in derived_events(event):
            acting += self._with_details(derived, self.routes().matching(derived), deadline)
        if not acting:
            return unrouted + expected
        planned = [(routed, route, self._hold(routed, route, deadline)) for routed, route in acting]
        reports = self._run_all(function, planned, deadline)
        for _, _, hold in planned:
            admission = hold.admission if hold else None
            if admission is not None and admission.full:  # `group.max` reached: the digest goes now
                self.flush_group(admission.partition, force=True)
        return unrouted + expected + reports

    # ---- expectations (route `expect:`): what an event does to them, and what the `check_expectations`
    # timer runs; their bookkeeping is in shared/noise/expectations.py.

    def _expectations(self, function: str, event: AmlEvent, table: RouteTable, deadline: float) -> list[ActionReport]:
        """Open, count or close the expectations this event concerns (one report per route), then deliver
        the "resolved late" notices that closing produced."""
        if not table.expecting:
            return []
        from shared.pipeline.expectations import on_event, planned

        if self.dry_run:
            plans = [ActionReport(event.id, event.event_type, function, route, None, PLANNED, detail)
                     for route, detail in planned(table.expecting, event)]  # fmt: skip
            for report in plans:
                emit(report)
            return plans
        if self.expectations is None:
            return []

        reports, notices = [], []
        for step in on_event(self.expectations, table.expecting, event):
            report = ActionReport(event.id, event.event_type, function, step.route, None, step.status, step.detail)
            emit(report)
            reports.append(report)
            route = table.route(step.route)
            if step.late is not None and route is not None:
                notices.append((step.late, route, self._hold(step.late, route, deadline)))
        return reports + (self._run_all(function, notices, deadline) if notices else [])

    def check_expectations(self) -> list[ActionReport]:
        """The timer: every due expectation that nothing closed runs its route's actions, once."""
        if self.expectations is None or self.dry_run:
            return []
        from shared.pipeline.expectations import check_due

        return check_due(self.expectations, self.routes(), self.deliver_expectation, self.settings.lease_seconds)

    def deliver_expectation(self, missed: ExpectationMissed, route: Route) -> list[ActionReport]:
        """The route's actions on a missed expectation, behind the gate (silences, mutes, repeat_interval)."""
        deadline = time.monotonic() + self.settings.invocation_budget_seconds
        return self._run_all(CHECK_FUNCTION, [(missed, route, self._hold(missed, route, deadline))], deadline)

    # ---- digests: what the `flush_digests` timer runs (and an event that fills its group to `max`);
    # the group bookkeeping is in shared/noise/digests.py.

    def flush_due(self) -> list[ActionReport]:
        """Every group that is due (or whose flush was left unfinished): one digest each."""
        if self.gate is None:
            return []
        reports: list[ActionReport] = []
        for partition in self.gate.digests.due_groups():
            reports += self.flush_group(partition)
        return reports

    def flush_group(self, partition: str, *, force: bool = False) -> list[ActionReport]:
        """Deliver the group's next digest if it is due (`force`: full, deliver now); the reports."""
        assert self.gate is not None
        store = self.gate.digests
        route_name = store.group_route(partition)
        route = self.routes().route(route_name) if route_name else None
        if route is None or route.noise.group is None:
            logger.warning("group %s: route %s no longer groups events; its pending members are left", partition,
                           route_name)  # fmt: skip
            store.abandon(partition)
            return []
        spec = route.noise.group
        lease = max(self.settings.lease_seconds, self.settings.invocation_budget_seconds + LEASE_MARGIN_SECONDS)
        digest = store.take(partition, spec, lease, force=force)
        if digest is None:
            return []
        reports = self.deliver_digest(digest, route)
        failed = any(report.status == FAILED or report.in_progress for report in reports)
        store.release(partition, spec, failed=failed)
        return reports

    def deliver_digest(self, digest: DigestEvent, route: Route) -> list[ActionReport]:
        """The route's actions on a digest (the flush_digests timer, or a group that reached `max`);
        each member's grouped records first learn which digest they went into."""
        for member in digest.members:
            for action in route.actions:
                self.ledger.annotate(member.key, route.name, action.position, f"grouped into {digest.id}",
                                     {"digest": digest.id, "group": digest.route})  # fmt: skip
        deadline = time.monotonic() + self.settings.invocation_budget_seconds
        return self._run_all(FLUSH_FUNCTION, [(digest, route, None)], deadline)

    def resend(self, original: LedgerRecord, event: AmlEvent, reason: str, by: str) -> ActionReport:
        """Run one recorded action again on purpose (`history.py resend`), with the route as it is now:
        a record and idempotency key of its own, tagged as a resend of the original. The gate is not
        asked (a resend is meant); the action's own guardrails still apply."""
        route = self.routes().route(original.route)
        action = route.actions[original.position] if route and original.position < len(route.actions) else None
        if action is None or action.kind != original.kind:
            raise ValueError(f"route {original.route!r} no longer has {original.kind}#{original.position}: "
                             "the routes changed since it ran; nothing was resent")  # fmt: skip
        started = time.monotonic()
        deadline = started + self.settings.invocation_budget_seconds
        record = LedgerRecord(
            event.id, route.name, action.position, action.kind, action.target, "", event_type=event.event_type,
            function=RESEND, event=original.event, tag=f"{RESEND}-{now():%Y%m%dT%H%M%S%f}",
            extra={"resend_of": original.key, "by": by, "reason": reason}, event_key=event.key,
        )  # fmt: skip
        claim = self.ledger.claim(record, self._lease_seconds(deadline))
        report = ActionReport(event.id, event.event_type, RESEND, route.name, action.kind, PLANNED, "",
                              position=action.position, target=action.target)  # fmt: skip
        if isinstance(claim, AlreadyHandled):  # the same resend key twice: practically impossible
            report.status, report.detail = SKIPPED, f"already {claim.record.status}"
        else:
            ctx = ActionContext(event, route.name, action.position, record.key, deadline, self.settings)
            report.status, report.detail, report.attempts = self._act_and_record(ctx, action, claim, deadline)
        report.duration_ms = round((time.monotonic() - started) * 1000, 1)
        emit(report)
        return report

    def _with_details(self, event: AmlEvent, routes: list[Route], deadline: float) -> list[tuple[AmlEvent, Route]]:
        """Each matched route with the event it acts on: routes with `enrich: true` get the event with
        its details (fetched once for all of them) and are kept only if their `run.*`/`model.*`
        conditions hold."""
        enriched: AmlEvent | None = None
        acting = []
        for route in routes:
            if not route.enrich or self.enricher is None or self.dry_run:
                acting.append((event, route))
                continue
            if enriched is None:
                enriched = replace(event, enrichment=self.enricher.enrich(event, deadline))
            if route.matches_details(enriched):
                acting.append((enriched, route))
        return acting

    def _hold(self, event: AmlEvent, route: Route, deadline: float) -> Hold | None:
        """The route's hold; one that cannot be decided (its storage failed) is the route's failure
        alone, recorded with its reason, while the other routes act."""
        if self.gate is None or self.dry_run:
            return None
        try:
            with deadline_at(deadline - RECORDING_RESERVE_SECONDS):
                return self.gate.hold(event, route)
        except LedgerUnavailable as error:
            return Hold(FAILED, f"not acted on: {error}")
        except Exception as error:
            logger.exception("route %s: the gate failed on event %s", route.name, event.id)
            return Hold(FAILED, f"not acted on: the gate failed: {type(error).__name__}: {error}")

    def _run_all(
        self, function: str, routes: list[tuple[AmlEvent, Route, Hold | None]], deadline: float
    ) -> list[ActionReport]:
        jobs = [(event, route, action, hold) for event, route, hold in routes for action in route.actions]
        if len(jobs) == 1:
            return [self._run(jobs[0][0], function, *jobs[0][1:], deadline)]
        futures = [self._pool.submit(self._run, job[0], function, *job[1:], deadline) for job in jobs]
        return [future.result() for future in futures]

    def reject(self, function: str, rejected: EventRejected, raw: Any) -> ActionReport:
        """Record an input that cannot be handled; it is not raised (no redelivery of poison)."""
        event_type = written_event_type(raw)
        report = ActionReport(rejected.event_id, event_type, function, None, None, REJECTED, str(rejected))
        self.ledger.record_rejection(function, str(rejected), raw_for_record(raw), rejected.event_id, event_type)
        emit(report)
        return report

    def _run(
        self, event: AmlEvent, function: str, route: Route, action: RouteAction, hold: Hold | None, deadline: float
    ) -> ActionReport:
        with deadline_at(deadline):  # storage calls too: every path ends within the budget
            return self._run_action(event, function, route, action, hold, deadline)

    def _run_action(
        self, event: AmlEvent, function: str, route: Route, action: RouteAction, hold: Hold | None, deadline: float
    ) -> ActionReport:
        started = time.monotonic()
        report = ActionReport(
            event.id, event.event_type, function, route.name, action.kind, PLANNED, "",
            position=action.position, target=action.target,
        )  # fmt: skip
        if self.dry_run:
            report.detail = f"would run {action.kind} -> {action.target}"
            emit(report)
            return report
        record = LedgerRecord(
            event.id, route.name, action.position, action.kind, action.target, "", event_type=event.event_type,
            function=function, event=stored_event(event), event_key=event.key,
        )  # fmt: skip
        ctx = ActionContext(event, route.name, action.position, record.key, deadline, self.settings)
        known = self._known_outcome(ctx, action, hold)
        if known is None:
            claim = self.ledger.claim(record, self._lease_seconds(deadline))
        else:
            record.status, record.detail, record.attempts, record.extra = _noting_enrichment(event, known)
            claim = self.ledger.settle(record)
        if isinstance(claim, AlreadyHandled):
            report.status, report.attempts, report.in_progress = SKIPPED, claim.record.attempts, claim.in_progress
            report.detail = (
                "in progress in another delivery"
                if claim.in_progress
                else f"already {claim.record.status}: {claim.record.detail}"
            )
            emit(report)
            return report
        if known is None:
            status, detail, attempts = self._act_and_record(ctx, action, claim, deadline)
        else:
            status, detail, attempts = self._act_as_recorded(ctx, action, claim, hold)
        report.status, report.detail, report.attempts = status, detail, attempts
        report.duration_ms = round((time.monotonic() - started) * 1000, 1)
        emit(report)
        return report

    def _lease_seconds(self, deadline: float) -> float:
        """A claim's lease outlasts the invocation holding it: no redelivery takes over a live action."""
        return max(self.settings.lease_seconds, deadline - time.monotonic() + LEASE_MARGIN_SECONDS)

    def _act_and_record(
        self, ctx: ActionContext, action: RouteAction, claim: Claim, deadline: float
    ) -> tuple[str, str, int]:
        """Run a claimed action (with retries), then write its outcome over the claim."""
        status, detail, attempts, extra = _noting_enrichment(ctx.event, self._attempt(ctx, action, deadline))
        detail = action.action.redact(detail)
        attempts += claim.previous.attempts if claim.previous else 0
        self.ledger.finish(claim, status, detail, attempts, extra)
        return status, detail, attempts

    def _act_as_recorded(
        self, ctx: ActionContext, action: RouteAction, claim: Claim, hold: Hold | None
    ) -> tuple[str, str, int]:
        """An action whose outcome its claim already recorded: a held one does not run; a `log` runs now,
        and should it fail after all, the record is corrected so that Event Grid redelivers."""
        status, detail, attempts = claim.record.status, claim.record.detail, claim.record.attempts
        if hold is None:
            try:
                action.action.run(ctx)
            except Exception as error:
                status, detail = FAILED, action.action.redact(_crashed(action, ctx.route, error))
                self.ledger.finish(claim, status, detail, attempts, {})
        return status, detail, attempts

    def _known_outcome(
        self, ctx: ActionContext, action: RouteAction, hold: Hold | None
    ) -> tuple[str, str, int, dict[str, Any]] | None:
        """(status, detail, attempts, extra) of an action settled before it runs, so that the claim's
        insert records it in one write: a held one (silenced, muted, repeated, grouped: it does not run),
        or a kind that cannot fail and leaves nothing durable of its own (`log`). None: claim, run, record."""
        if hold is not None:
            return hold.status, hold.detail, 0, hold.record
        outcome = action.action.settled_outcome(ctx)
        return None if outcome is None else (DONE, outcome.detail, 1, outcome.record)

    def _attempt(
        self, ctx: ActionContext, action: RouteAction, deadline: float
    ) -> tuple[str, str, int, dict[str, Any]]:
        """Run the action, retrying transient failures; (status, detail, attempts, extra)."""
        policy = action.retry
        budget_end = deadline - RECORDING_RESERVE_SECONDS
        for attempt in range(1, policy.attempts + 1):
            action_deadline = (
                budget_end if action.timeout is None else min(budget_end, time.monotonic() + action.timeout)
            )
            try:
                with deadline_at(action_deadline):
                    outcome = action.action.run(replace(ctx, deadline=action_deadline, attempt=attempt))
                return DONE, outcome.detail, attempt, outcome.record
            except ActionSkipped as skipped:
                return SKIPPED, str(skipped), attempt, {}
            except ActionFailed as failed:
                if not failed.retryable or attempt == policy.attempts:
                    return FAILED, str(failed), attempt, {}
                wait = min(policy.max_backoff, policy.backoff * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
                if failed.retry_after is not None:
                    wait = max(wait, failed.retry_after)
                if time.monotonic() + wait >= budget_end:
                    return FAILED, f"{failed} (time budget spent; Event Grid will redeliver)", attempt, {}
                time.sleep(wait)
            except Exception as error:
                return FAILED, _crashed(action, ctx.route, error), attempt, {}
        raise AssertionError("unreachable: the loop returns on its last attempt")


def stored_event(event: AmlEvent) -> str:
    """The event as its ledger records keep it for `history.py resend` (parse_event reads it back);
    "" for a digest, which is rebuilt from its group, not resent."""
    if getattr(event, "members", None):
        return ""
    envelope = {"id": event.id, "eventType": event.event_type, "subject": event.subject, "topic": event.topic,
                "eventTime": event.event_time.isoformat() if event.event_time else None,
                "dataVersion": event.data_version, "data": dict(event.data)}  # fmt: skip
    return json.dumps(envelope, default=str, ensure_ascii=False)


def _crashed(action: RouteAction, route: str, error: Exception) -> str:
    """A bug in a handler must not take the other actions down: logged with its traceback, recorded."""
    logger.exception("action %s of route %s crashed", action.kind, route)
    return f"{type(error).__name__}: {error}"


def _noting_enrichment(
    event: AmlEvent, outcome: tuple[str, str, int, dict[str, Any]]
) -> tuple[str, str, int, dict[str, Any]]:
    """An outcome of acting without the run/model details the route asked for says so."""
    status, detail, attempts, extra = outcome
    if event.enrichment is not None and event.enrichment.problem:
        detail = f"{detail} (without run/model details: {event.enrichment.problem})"
        extra = {**extra, "enrichment": event.enrichment.problem}
    return status, detail, attempts, extra
