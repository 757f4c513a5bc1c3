"""`AzureMLAction`: what the Azure ML action kinds (`pipeline`, `batch_endpoint`, `schedule`) share —
the workspace choice, the guardrails, and the run skeleton that starts one job per event exactly once."""

from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

from handlers.azureml.client import azure_call, job_name_for, job_studio_url, ml_client, status_text
from handlers.azureml.guardrails import Guardrails
from shared.actions import (
    Action,
    ActionContext,
    ActionFailed,
    ActionOutcome,
    ActionSkipped,
    Preview,
    PreviewPart,
    pretty_json,
)
from shared.events.workspace import Workspace
from shared.noise.counters import Reservation, store_for
from shared.platform.errors import first_line
from shared.problems import Problems
from shared.templates import TemplateProblem, render, template_context

# Tags on every job the app starts: find them in studio, and `skip_if_running` finds them by route.
ROUTE_TAG, EVENT_TAG, LEDGER_TAG = "aml_events.route", "aml_events.event_id", "aml_events.ledger_key"
# Job statuses that mean "still going" (azure.ai.ml JobStatus); the rest are final.
ACTIVE_STATUSES = frozenset(
    {"NotStarted", "Starting", "Provisioning", "Preparing", "Queued", "Running", "Finalizing", "CancelRequested"}
)


def parse_workspace(spec: Any, problems: Problems, line: int, kind: str) -> Workspace | None:
    """`workspace: {subscription, resource_group, name}`; None: the workspace that sent the event."""
    if spec is None:
        return None
    keys = ("subscription", "resource_group", "name")
    if not isinstance(spec, Mapping) or set(spec) != set(keys) or not all(isinstance(spec[k], str) and spec[k]
                                                                           for k in keys):  # fmt: skip
        problems.add(line, f"{kind}: workspace must be {{subscription: <id>, resource_group: <group>, name: <name>}}")
        return None
    return Workspace(spec["subscription"], spec["resource_group"], spec["name"])


EXPERIMENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")


def parse_experiment(value: Any, problems: Problems, line: int, kind: str) -> str | None:
    """`experiment:` the job goes to; None: the job's own (or the workspace's `Default`)."""
    if value is None:
        return None
    if not EXPERIMENT_NAME.match(str(value)):
        problems.add(line, f"{kind}: experiment {value!r}: letters, digits, '_', '-' and '.' (at most 255)")
    return str(value)


def outcome(detail: str, workspace: Workspace, job_name: str, studio_url: str | None = None) -> ActionOutcome:
    url = studio_url or job_studio_url(workspace, job_name)
    return ActionOutcome(
        detail=f"{detail}: {url}",
        record={"job": job_name, "studio_url": url, "workspace": workspace.resource_id},
    )


# ---- the shared action skeleton ---------------------------------------------------------------------


class AzureMLAction(Action):
    """Picks the workspace, applies the guardrails, then `start`s the job named after the ledger key."""

    OPTIONS: ClassVar[Mapping[str, bool]] = {"workspace": False, **Guardrails.OPTIONS}
    #: why `skip_if_running` cannot work for this kind; empty when `running_job` can tell
    SKIP_IF_RUNNING_UNSUPPORTED: ClassVar[str] = ""

    def configure(self, problems: Problems, line: int) -> None:
        self.workspace = parse_workspace(self.options.get("workspace"), problems, line, self.kind)
        self.guardrails = Guardrails.parse(self.options, problems, line, self.kind, self.event_types)
        if self.guardrails.skip_if_running and self.SKIP_IF_RUNNING_UNSUPPORTED:
            problems.add(line, f"{self.kind}: skip_if_running is not available: {self.SKIP_IF_RUNNING_UNSUPPORTED}")
        self.configure_job(problems, line)

    @abstractmethod
    def configure_job(self, problems: Problems, line: int) -> None: ...

    @property
    @abstractmethod
    def default_key(self) -> str:
        """What the cooldown is per when the event names no model and the route sets no `key`."""

    @abstractmethod
    def start(self, ctx: ActionContext, client: Any, workspace: Workspace, job_name: str) -> ActionOutcome: ...

    def running_job(self, ctx: ActionContext, client: Any, job_name: str) -> tuple[str, str] | None:
        """(name, status) of a job this action started earlier that is still active, or None."""
        return None

    def job_preview(self, ctx: ActionContext) -> dict[str, Any]:
        """What `start` would ask the workspace for (inputs, tags), without the SDK."""
        return {}

    def preview(self, ctx: ActionContext) -> Preview:
        workspace = self.workspace or ctx.event.workspace
        job_name = job_name_for(ctx.key, ctx.route)
        guardrails = self.guardrails
        spec = {
            "kind": self.kind, "target": self.target, "workspace": workspace.resource_id, "job_name": job_name,
            **self.job_preview(ctx),
            "guardrails": {"cooldown_seconds": guardrails.cooldown, "max_per_day": guardrails.max_per_day,
                           "skip_if_running": guardrails.skip_if_running},
        }  # fmt: skip
        return Preview("text", f"{self.kind} {self.target}: job {job_name} in {workspace.name}",
                       (PreviewPart("job.json", pretty_json(spec)),))  # fmt: skip

    def run(self, ctx: ActionContext) -> ActionOutcome:
        workspace = self.workspace or ctx.event.workspace
        if workspace is None:
            raise ActionFailed(
                f"{self.kind}: a {ctx.event.short_type} event names no Azure ML workspace: set the action's "
                "`workspace:`, or map its storage container to a datastore in the DATASTORES setting"
            )
        job_name = job_name_for(ctx.key, ctx.route)
        client = ml_client(workspace, ctx.settings)
        if self.guardrails.skip_if_running:
            with azure_call("skip_if_running: listing jobs", workspace):
                running = self.running_job(ctx, client, job_name)
            if running:
                raise ActionSkipped(f"skip_if_running: job {running[0]} started by this route is still {running[1]}")
        reservation = self._reserve(ctx) if self.guardrails.counted else None
        try:
            return self.start(ctx, client, workspace, job_name)
        except ActionFailed as failed:
            if reservation is not None and not failed.retryable:
                reservation.release()  # nothing started: the start does not count against the limits
            raise

    def _reserve(self, ctx: ActionContext) -> Reservation:
        from azure.core.exceptions import AzureError

        guardrails = self.guardrails
        cooldown = None
        if guardrails.cooldown is not None:
            key = self._cooldown_key(ctx)
            cooldown = (key, guardrails.cooldown)
        try:
            return store_for(ctx.settings).reserve(
                f"{ctx.route}|{ctx.position:03d}", ctx.key, ctx.event.id, cooldown=cooldown,
                max_per_day=guardrails.max_per_day,
            )  # fmt: skip
        except AzureError as error:
            raise ActionFailed(f"guardrail storage unavailable: {first_line(error)}", retryable=True) from error

    def _cooldown_key(self, ctx: ActionContext) -> str:
        if self.guardrails.key is None:
            return str(ctx.event.fields.get("model_name") or self.default_key)
        try:
            return render(self.guardrails.key, template_context(ctx.event, ctx.route))
        except TemplateProblem as problem:
            raise ActionFailed(f"key: {problem}") from None


def job_tags(ctx: ActionContext, extra: Mapping[str, str]) -> dict[str, str]:
    return {**extra, ROUTE_TAG: ctx.route, EVENT_TAG: ctx.event.id, LEDGER_TAG: ctx.key}


def first_active(jobs: Any, job_name: str, route: str | None = None) -> tuple[str, str] | None:
    """The first job in `jobs` (other than `job_name`, of `route` if given) whose status is active."""
    for job in jobs:
        if job is None or job.name == job_name:
            continue
        if route is not None and (job.tags or {}).get(ROUTE_TAG) != route:
            continue
        status = status_text(job.status)
        if status in ACTIVE_STATUSES:
            return job.name, status
    return None
