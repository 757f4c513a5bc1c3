"""Reaching Azure ML: the `MLClient` per workspace and its credential, job names, and errors mapped to
action outcomes. Shared by the Azure ML actions and by the workspace reads of `enrich: true`.

- `MLClient` per workspace, cached for the worker's life; `azure.ai.ml` is imported on the first use,
  never at module import (about 1.5 s and 60 MiB on a cold start).
- The identity: shared/platform/identity.py, i.e. the app's managed identity in Azure (`AZURE_CLIENT_ID`
  selects a user-assigned one). `use_connection` swaps cloud, credential and TLS trust for tests.
- Exactly once: the job name is derived from the ledger key, so a redelivered event names the same
  job, and the service's "already exists" means an earlier delivery started it (`JobExists`).
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from handlers.common.http import RETRYABLE_STATUS
from shared.actions import ActionFailed
from shared.events.workspace import Workspace
from shared.platform.errors import first_line
from shared.settings import Settings

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
