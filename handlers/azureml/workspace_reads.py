"""Reading run and model details from the workspace that sent an event (route option `enrich`).

Where each detail lives:
- the ARM job resource (`MLClient.jobs.get`, REST JobBase) has the status but no start or end time
  and no error; those are in the run-history record (REST `RunDetails`: `startTimeUtc`,
  `endTimeUtc`, `error.error.message`), which the SDK reads only through a private API after a
  discovery round-trip. We read it directly from the workspace's regional host, the host of its
  MLflow tracking URI (`azureml://<region>.api.azureml.ms/mlflow/v1.0/<workspace path>`), at
  `/history/v1.0/<workspace path>/runs/<id>/details`;
- metrics: the MLflow REST API on the same host, `GET .../api/2.0/mlflow/runs/get?run_id=<id>`
  (the latest value of each metric); the `mlflow` package is not needed for one GET;
- models: `MLClient.models.get(name, version)`: description and `job_name` (the producing run).

Both regional calls carry a bearer token for Azure Resource Manager from the app's identity, the
token the azureml SDKs send to these data-plane APIs. The tracking URI is read once per workspace
per worker (`MLClient.workspaces.get`).
"""

from __future__ import annotations

import ssl
import threading
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from handlers.azureml.client import current_connection, ml_client, workspace_credential
from shared.events.enrichment import Enrichment, duration_text
from shared.events.model import AmlEvent
from shared.events.workspace import Workspace
from shared.platform.clock import parse_utc
from shared.platform.errors import first_line
from shared.settings import Settings, current_settings

ARM_RESOURCE = "https://management.azure.com/"
REQUEST_TIMEOUT_SECONDS = 10.0  # the caller bounds the whole fetch more tightly; this stops leaks

_hosts: dict[tuple[Workspace, str | None], str] = {}  # (workspace, cloud of the connection) -> regional host
_hosts_lock = threading.Lock()


class ReadFailed(Exception):
    """A detail could not be read; the message says which and why."""


def fetch(event: AmlEvent) -> Enrichment:
    """The details of the event's run or model; `problem` set (nothing raised) when a read fails."""
    settings = current_settings()
    try:
        if event.short_type == "ModelRegistered":
            return _model_enrichment(event, settings)
        return Enrichment(run=run_details(event.workspace, str(event.fields.get("run_id")), settings))
    except ReadFailed as failed:
        return Enrichment(problem=str(failed))


def _model_enrichment(event: AmlEvent, settings: Settings) -> Enrichment:
    name, version = str(event.fields.get("model_name")), str(event.fields.get("model_version"))
    model = _sdk_read(f"model {name}:{version}", lambda: ml_client(event.workspace, settings).models.get(name, version))
    job_name = getattr(model, "job_name", None)
    run = run_details(event.workspace, job_name, settings) if job_name else None
    details = {
        "name": name,
        "version": version,
        "description": model.description or "",
        "job_name": job_name or "",
        "tags": dict(model.tags or {}),
        "properties": dict(model.properties or {}),
        "metrics": dict(run["metrics"]) if run else {},
        "run": run,
    }
    return Enrichment(run=run, model=details)


def run_details(workspace: Workspace, run_id: str, settings: Settings) -> dict[str, Any]:
    """Status, times, duration, error, tags and metrics of one run."""
    host = _regional_host(workspace, settings)
    path = workspace.resource_id
    history = _get(f"run {run_id}", f"{host}/history/v1.0{path}/runs/{run_id}/details", settings)
    mlflow = _get(f"metrics of run {run_id}", f"{host}/mlflow/v1.0{path}/api/2.0/mlflow/runs/get", settings,
                  params={"run_id": run_id})  # fmt: skip
    data = (mlflow.get("run") or {}).get("data") or {}
    start, end = parse_utc(history.get("startTimeUtc")), parse_utc(history.get("endTimeUtc"))
    error = ((history.get("error") or {}).get("error")) or {}
    return _run_view(run_id, history, data, start, end, error)


def _run_view(
    run_id: str,
    history: dict[str, Any],
    data: dict[str, Any],
    start: datetime | None,
    end: datetime | None,
    error: dict[str, Any],
) -> dict[str, Any]:
    seconds = (end - start).total_seconds() if start and end else None
    return {
        "id": run_id,
        "status": history.get("status") or "",
        "start_time": start.isoformat() if start else None,
        "end_time": end.isoformat() if end else None,
        "duration_seconds": seconds,
        "duration": duration_text(seconds) if seconds is not None else "",
        "error": error.get("message") or "",
        "error_code": error.get("code") or "",
        "tags": dict(history.get("tags") or {}),
        "properties": dict(history.get("properties") or {}),
        "metrics": {m["key"]: m["value"] for m in data.get("metrics") or [] if "key" in m},
        "params": {p["key"]: p.get("value") for p in data.get("params") or [] if "key" in p},
    }


def _regional_host(workspace: Workspace, settings: Settings) -> str:
    """`https://<region>.api.azureml.ms`, from the workspace's MLflow tracking URI (read once)."""
    key = (workspace, current_connection().cloud)
    with _hosts_lock:
        if key in _hosts:
            return _hosts[key]
    found = _sdk_read(
        f"workspace {workspace.name}", lambda: ml_client(workspace, settings).workspaces.get(workspace.name)
    )
    uri = getattr(found, "mlflow_tracking_uri", None) or ""
    parts = urlsplit(uri)
    if parts.scheme not in ("azureml", "https") or not parts.netloc:
        raise ReadFailed(f"workspace {workspace.name} has no usable MLflow tracking URI ({uri or 'none'})")
    host = f"https://{parts.netloc}"
    with _hosts_lock:
        _hosts[key] = host
    return host


def _sdk_read(what: str, read: Any) -> Any:
    from azure.core.exceptions import AzureError

    try:
        return read()
    except AzureError as error:
        status = getattr(error, "status_code", None)
        raise ReadFailed(f"{what}: {status or ''} {first_line(error)}".replace("  ", " ")) from error


def _get(what: str, url: str, settings: Settings, params: dict[str, str] | None = None) -> dict[str, Any]:
    token = workspace_credential(settings).get_token(_arm_scope()).token
    verify = current_connection().connection_verify
    try:
        response = _http(verify).get(url, params=params, headers={"Authorization": f"Bearer {token}"},
                                     timeout=REQUEST_TIMEOUT_SECONDS)  # fmt: skip
    except httpx.HTTPError as error:
        raise ReadFailed(f"{what}: {type(error).__name__}: {error}") from error
    if response.status_code != 200:
        raise ReadFailed(f"{what}: {response.status_code} {_error_message(response)}")
    try:
        body = response.json()
    except ValueError as error:
        raise ReadFailed(f"{what}: the answer is not JSON") from error
    return body if isinstance(body, dict) else {}


def _arm_scope() -> str:
    metadata = current_connection().cloud_metadata or {}
    return f"{str(metadata.get('resource_manager') or ARM_RESOURCE).rstrip('/')}/.default"


_clients: dict[Any, httpx.Client] = {}
_clients_lock = threading.Lock()


def _http(verify: str | bool | None) -> httpx.Client:
    """One pooled client per TLS trust setting (the real cloud, or a test fake's certificate)."""
    key = True if verify is None else verify
    with _clients_lock:
        if key not in _clients:
            trust = ssl.create_default_context(cafile=key) if isinstance(key, str) else key
            _clients[key] = httpx.Client(verify=trust, follow_redirects=False,
                                         headers={"User-Agent": "aml-event-actions/1.0"})  # fmt: skip
        return _clients[key]


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return str(message or body)[:300]
