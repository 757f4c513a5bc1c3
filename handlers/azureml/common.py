"""What the Azure ML actions (`pipeline`, `batch_endpoint`, `schedule`) share.

- `MLClient` per workspace, cached for the worker's life; `azure.ai.ml` is imported on the first run
  of such an action, never at module import (about 1.5 s and 60 MiB on a cold start).
- The identity: shared/platform/identity.py, i.e. the app's managed identity in Azure (`AZURE_CLIENT_ID`
  selects a user-assigned one). `use_connection` swaps cloud, credential and TLS trust for tests.
- Exactly once: the job name is derived from the ledger key, so a redelivered event names the same
  job, and the service's "already exists" means an earlier delivery started it (`JobExists`).
- `AzureMLAction`: workspace choice, guardrails, and the run skeleton the three kinds share.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from abc import abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

from handlers.azureml.guardrails import Guardrails
from handlers.common.http import RETRYABLE_STATUS
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
from shared.settings import Settings
from shared.templates import TemplateProblem, render, template_context

# Tags on every job the app starts: find them in studio, and `skip_if_running` finds them by route.
ROUTE_TAG, EVENT_TAG, LEDGER_TAG = "aml_events.route", "aml_events.event_id", "aml_events.ledger_key"
# Job statuses that mean "still going" (azure.ai.ml JobStatus); the rest are final.
ACTIVE_STATUSES = frozenset(
    {"NotStarted", "Starting", "Provisioning", "Preparing", "Queued", "Running", "Finalizing", "CancelRequested"}
)
# azure.ai.ml logs a warning per "experimental" schema class it touches while loading a job: noise.
logging.getLogger("azure.ai.ml._utils._experimental").setLevel(logging.ERROR)
ROLE_HINT = "the app's identity needs the AzureML Data Scientist role on workspace {workspace} (docs/pipelines.md)"


class JobExists(Exception):
    """The service already has a job of that name: an earlier delivery of this event started it."""


# ---- the connection: credential, cloud, client cache ----------------------------------------------


@dataclass(frozen=True)
class AzureMLConnection:
    """How to reach Azure ML. The default is the public cloud with the app's managed identity."""

    credential: Any = None  # a TokenCredential; None: the app's (shared/platform/identity.py)
    cloud: str | None = None  # a cloud name for `cloud_metadata` (tests: a local fake)
    cloud_metadata: Mapping[str, str] | None = None
    connection_verify: str | bool | None = None  # CA bundle for a fake with a self-signed certificate


_connection = AzureMLConnection()
_clients: dict[Workspace, Any] = {}
_credential: Any = None  # the connection's, or the app's managed identity
_clients_lock = threading.Lock()


def use_connection(connection: AzureMLConnection | None) -> None:
    """Point every Azure ML action at another cloud/credential (tests); None restores the default."""
    global _connection, _credential
    with _clients_lock:
        _connection = connection or AzureMLConnection()
        _clients.clear()
        _credential = None


def current_connection() -> AzureMLConnection:
    return _connection


def workspace_credential(settings: Settings) -> Any:
    """The TokenCredential every Azure ML call uses (the MLClients and the enrichment reads)."""
    with _clients_lock:
        return _credential_locked(settings)


def _credential_locked(settings: Settings) -> Any:
    global _credential
    if _credential is None:
        _credential = _connection.credential or _default_credential(settings)
    return _credential


def ml_client(workspace: Workspace, settings: Settings) -> Any:
    """The worker's MLClient for `workspace` (building one makes no requests; importing the SDK is the cost)."""
    with _clients_lock:
        client = _clients.get(workspace)
        if client is None:
            from azure.ai.ml import MLClient

            connection = _connection
            options: dict[str, Any] = {"enable_telemetry": False}
            if connection.cloud_metadata is not None:
                options.update(cloud=connection.cloud, cloud_metadata=dict(connection.cloud_metadata))
            if connection.connection_verify is not None:
                options["connection_verify"] = connection.connection_verify
            credential = _credential_locked(settings)
            client = MLClient(
                credential, workspace.subscription_id, workspace.resource_group, workspace.name, **options
            )
            _clients[workspace] = client
        return client


def _default_credential(settings: Settings) -> Any:
    from shared.platform.identity import app_credential

    return app_credential(settings.client_id or None)


# ---- names, links, errors ------------------------------------------------------------------------------


def job_name_for(key: str, route: str) -> str:
    """A valid Azure ML job name (letters, digits, '_'; starts with one; well under 255) that only
    this ledger key produces: `<route>_<sha256(key)[:24]>`."""
    slug = re.sub(r"[^a-z0-9]+", "_", route.lower()).strip("_")[:40] or "job"
    return f"{slug}_{hashlib.sha256(key.encode('utf-8')).hexdigest()[:24]}"


def job_studio_url(workspace: Workspace, job_name: str) -> str:
    return workspace.studio_url(f"runs/{job_name}")


def status_text(status: Any) -> str:
    return str(getattr(status, "value", status) or "")


@contextmanager
def azure_call(what: str, workspace: Workspace) -> Iterator[None]:
    """Map SDK errors to ActionFailed (retryable when the service is busy or unreachable) or JobExists."""
    from azure.ai.ml.exceptions import MlException
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ResourceExistsError,
        ServiceRequestError,
        ServiceResponseError,
    )

    try:
        yield
    except ResourceExistsError as error:
        raise JobExists(str(error)) from error
    except ClientAuthenticationError as error:
        raise ActionFailed(f"{what}: could not authenticate: {first_line(error)}; {_hint(workspace)}") from error
    except HttpResponseError as error:
        status = error.status_code or 0
        message = first_line(error)
        if status == 409 or "already exists" in message.lower():
            raise JobExists(message) from error
        if status in (401, 403):
            raise ActionFailed(f"{what}: {status} {message}; {_hint(workspace)}") from error
        raise ActionFailed(f"{what}: {status} {message}", retryable=status in RETRYABLE_STATUS) from error
    except (ServiceRequestError, ServiceResponseError) as error:
        raise ActionFailed(f"{what}: Azure ML unreachable: {first_line(error)}", retryable=True) from error
    except MlException as error:  # the SDK's own validation: the YAML or inputs do not fit
        raise ActionFailed(f"{what}: {first_line(error)}") from error


def _hint(workspace: Workspace) -> str:
    return ROLE_HINT.format(workspace=workspace.name)



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
