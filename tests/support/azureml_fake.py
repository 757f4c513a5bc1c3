"""A local HTTPS server speaking the Azure ML REST contract the app uses, for the REAL `MLClient`.

What it answers (paths under `/subscriptions/{sub}/resourceGroups/{rg}/providers/
Microsoft.MachineLearningServices/workspaces/{ws}`):
  GET  ''                          the workspace (pipeline submission reads its id)
  PUT  /jobs/{name}                create a job; 409 "already exists" for a name it has seen
  GET  /jobs/{name}, /jobs         one job; the list, filtered by `tag` (key) and `scheduleId`
  GET  /batchEndpoints/{e}[/deployments]   an endpoint whose scoring URI is this server's /score/{e}
  POST /schedules/{name}/trigger   fire a schedule: {"submissionId", "scheduleActionType"}
  POST /score/{e}                  the batch endpoint's scoring URI: starts a batch job
  GET  /models/{name}/versions/{v} a registered model (description, jobName)
and on the workspace's regional host (here the same server; the workspace's `mlFlowTrackingUri` says so):
  GET  /history/v1.0{workspace}/runs/{id}/details            run history RunDetails (times, error)
  GET  /mlflow/v1.0{workspace}/api/2.0/mlflow/runs/get?run_id=  the MLflow run (metrics, params)
Jobs, endpoints, schedules, runs and models are seeded by tests; every request is recorded for
assertions; `delay(pattern, seconds)` makes matching requests slow.

HTTPS with a self-signed certificate for 127.0.0.1 (the SDK refuses bearer tokens over http for
pipeline jobs), and the credential of `connection()` returns JWTs with the `aud`/`tid` the SDK checks (it decodes
them without verifying the signature).
"""

from __future__ import annotations

import json
import re
import ssl
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from handlers.azureml.client import AzureMLConnection
from tests.support.certificate import self_signed_certificate
from tests.support.loopback import JsonHandler

TENANT = "72f988bf-0000-4000-8000-000000000000"
CLOUD_NAME = "LocalAzureMLFake"
_WORKSPACE = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)"
    r"/providers/Microsoft\.MachineLearningServices/workspaces/(?P<ws>[^/]+)(?P<rest>/.*)?$",
    re.IGNORECASE,
)
ACTIVE_STATUSES = ("NotStarted", "Queued", "Preparing", "Provisioning", "Starting", "Running", "Finalizing")


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any

    @property
    def workspace(self) -> str:
        match = _WORKSPACE.match(self.path)
        return match["ws"] if match else ""


@dataclass
class Failure:
    """The next request whose method and path match answers with this status instead."""

    method: str
    path_pattern: str
    status: int
    message: str = "scripted failure"


@dataclass
class AzureMLFake:
    requests: list[Request] = field(default_factory=list)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> resource as the service returns it
    batch_endpoints: dict[str, list[str]] = field(default_factory=dict)  # endpoint -> deployment names
    schedules: set[str] = field(default_factory=set)
    failures: deque[Failure] = field(default_factory=deque)
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)  # run id -> {"details", "metrics", "params"}
    models: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (name, version) -> properties
    delays: dict[str, float] = field(default_factory=dict)  # path pattern -> seconds before answering

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._certificate = self_signed_certificate()
        fake = self

        class Handler(JsonHandler):
            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                request = Request(
                    self.command,
                    parts.path,
                    {k: v[0] for k, v in parse_qs(parts.query).items()},
                    {k.lower(): v for k, v in self.headers.items()},
                    json.loads(raw) if raw else None,
                )
                self.send_json(*fake._answer(request))

            do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*self._certificate)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    # ---- what tests use -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.server.server_address[1]}/"

    @property
    def ca_file(self) -> str:
        return self._certificate[0]

    def connection(self) -> AzureMLConnection:
        """Where the app's Azure ML actions go to reach this server (`azureml.use_connection`)."""
        return connection_to(self.base_url, self.ca_file)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.jobs.clear()
            self.failures.clear()
            self.batch_endpoints.clear()
            self.schedules.clear()
            self.runs.clear()
            self.models.clear()
            self.delays.clear()

    def seed_run(
        self, run_id: str, *, status: str, start: str, end: str | None = None, error: str | None = None,
        metrics: dict[str, float] | None = None, params: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:  # fmt: skip
        """A run as run history and MLflow know it (times in ISO 8601 UTC)."""
        details: dict[str, Any] = {"runId": run_id, "status": status, "startTimeUtc": start, "endTimeUtc": end,
                                   "tags": tags or {}, "properties": {}}  # fmt: skip
        if error:
            details["error"] = {"error": {"code": "UserError", "message": error}}
        with self._lock:
            self.runs[run_id] = {"details": details, "metrics": metrics or {}, "params": params or {}}

    def seed_model(self, name: str, version: str, *, description: str, job_name: str | None) -> None:
        with self._lock:
            self.models[(name, version)] = {"description": description, "jobName": job_name, "tags": {},
                                            "properties": {}, "flavors": {}, "modelType": "mlflow_model"}  # fmt: skip

    def delay(self, path_pattern: str, seconds: float) -> None:
        with self._lock:
            self.delays[path_pattern] = seconds

    def seed_job(self, name: str, *, status: str, tags: dict[str, str], schedule: str | None = None) -> None:
        """A job that exists already (started by someone else, or by an earlier delivery)."""
        with self._lock:
            self.jobs[name] = {
                "id": f"/jobs/{name}",
                "name": name,
                "properties": {"jobType": "Pipeline", "status": status, "tags": tags, "scheduleId": schedule},
            }

    def fail_next(self, method: str, path_pattern: str, status: int, message: str = "scripted failure") -> None:
        self.failures.append(Failure(method, path_pattern, status, message))

    def sent(self, method: str, path_pattern: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.method == method and re.search(path_pattern, r.path)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # ---- the contract -----------------------------------------------------------------------------

    def _answer(self, request: Request) -> tuple[int, Any]:
        with self._lock:
            pause = next((seconds for pattern, seconds in self.delays.items() if re.search(pattern, request.path)), 0)
        time.sleep(pause)
        with self._lock:
            self.requests.append(request)
            for failure in list(self.failures):
                if failure.method == request.method and re.search(failure.path_pattern, request.path):
                    self.failures.remove(failure)
                    return failure.status, _error(
                        "ServiceError" if failure.status >= 500 else "UserError", failure.message
                    )
            if request.path.startswith("/score/"):
                return self._start_batch_job(request)
            for regional in ("/history/v1.0", "/mlflow/v1.0"):
                if request.path.startswith(regional + "/") and request.method == "GET":
                    return self._regional(request, regional, request.path[len(regional) :])
            match = _WORKSPACE.match(request.path)
            if not match:
                return 404, _error("NotFound", f"no such path {request.path}")
            rest = match["rest"] or ""
            segments = [s for s in rest.split("/") if s]
            if not segments and request.method == "GET":
                tracking = f"azureml://{urlsplit(self.base_url).netloc}/mlflow/v1.0{request.path}"
                properties = {"workspaceId": str(uuid.uuid4()), "mlFlowTrackingUri": tracking}
                return 200, {"id": request.path, "name": match["ws"], "location": "eastus", "properties": properties}
            if segments[:1] == ["models"] and segments[2:3] == ["versions"] and request.method == "GET":
                model = self.models.get((segments[1], segments[3]))
                if model is None:
                    return 404, _error("UserError", f"Model {segments[1]}:{segments[3]} not found")
                return 200, {"id": request.path, "name": segments[3], "properties": model}
            if segments[:1] == ["jobs"]:
                return self._jobs(request, segments[1:])
            if segments[:1] == ["batchEndpoints"] and request.method == "GET":
                return self._batch_endpoint(request, segments[1:])
            if segments[:1] == ["schedules"] and segments[2:] == ["trigger"] and request.method == "POST":
                name = segments[1]
                if name not in self.schedules:
                    return 404, _error("UserError", f"Schedule {name} not found")
                return 200, {"submissionId": f"{name}-{uuid.uuid4().hex[:8]}", "scheduleActionType": "CreateJob"}
            return 404, _error("NotFound", f"the fake does not serve {request.method} {rest}")

    def _regional(self, request: Request, api: str, path: str) -> tuple[int, Any]:
        """Run history details and the MLflow run, from the runs tests seeded."""
        match = _WORKSPACE.match(path)
        rest = (match["rest"] or "") if match else ""
        if api == "/history/v1.0" and (found := re.fullmatch(r"/runs/([^/]+)/details", rest)):
            run = self.runs.get(found[1])
            return (200, run["details"]) if run else (404, _error("UserError", f"Run {found[1]} not found"))
        if api == "/mlflow/v1.0" and rest == "/api/2.0/mlflow/runs/get":
            run_id = request.query.get("run_id", "")
            run = self.runs.get(run_id)
            if run is None:
                return 404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": f"Run {run_id} not found"}
            metrics = [{"key": k, "value": v, "timestamp": 0, "step": 0} for k, v in run["metrics"].items()]
            params = [{"key": k, "value": v} for k, v in run["params"].items()]
            info = {"run_id": run_id, "run_uuid": run_id, "status": "FINISHED"}
            return 200, {"run": {"info": info, "data": {"metrics": metrics, "params": params, "tags": []}}}
        return 404, _error("NotFound", f"the fake does not serve {api}{path}")

    def _jobs(self, request: Request, segments: list[str]) -> tuple[int, Any]:
        if not segments and request.method == "GET":
            tag, schedule = request.query.get("tag"), request.query.get("scheduleId")
            found = [
                job
                for job in self.jobs.values()
                if (tag is None or tag in (job["properties"].get("tags") or {}))
                and (schedule is None or job["properties"].get("scheduleId") == schedule)
            ]
            return 200, {"value": found}
        name = segments[0]
        if request.method == "GET":
            return (200, self.jobs[name]) if name in self.jobs else (404, _error("UserError", f"Job {name} not found"))
        if request.method == "PUT":
            if name in self.jobs:
                return 409, _error("UserError", f"A job with this ID already exists: {name}")
            properties = dict(request.body["properties"])
            properties["status"] = "NotStarted"
            properties["services"] = {
                "Studio": {"endpoint": f"https://ml.azure.com/runs/{name}", "jobServiceType": "Studio"}
            }
            resource = {"id": request.path, "name": name, "properties": properties}
            self.jobs[name] = resource
            return 201, resource
        return 405, _error("UserError", f"{request.method} on a job")

    def _batch_endpoint(self, request: Request, segments: list[str]) -> tuple[int, Any]:
        name = segments[0]
        if name not in self.batch_endpoints:
            return 404, _error("UserError", f"Batch endpoint {name} not found")
        deployments = self.batch_endpoints[name]
        if segments[1:] == ["deployments"]:
            return 200, {"value": [{"name": d, "properties": {}} for d in deployments]}
        return 200, {
            "id": request.path,
            "name": name,
            "properties": {
                "authMode": "AADToken",
                "scoringUri": f"{self.base_url}score/{name}",
                "defaults": {"deploymentName": deployments[0] if deployments else None},
            },
        }

    def _start_batch_job(self, request: Request) -> tuple[int, Any]:
        endpoint = request.path.split("/")[2]
        if endpoint not in self.batch_endpoints:
            return 404, _error("UserError", f"Batch endpoint {endpoint} not found")
        properties = request.body.get("properties", {})
        name = properties.get("name") or f"batchjob-{uuid.uuid4().hex[:8]}"
        if name in self.jobs:
            return 409, _error("UserError", f"A job with this ID already exists: {name}")
        self.jobs[name] = {"id": f"/jobs/{name}", "name": name,
                           "properties": {"jobType": "Pipeline", "status": "NotStarted", "tags": {}}}  # fmt: skip
        return 200, self.jobs[name]


def connection_to(base_url: str, ca_file: str) -> AzureMLConnection:
    """The connection to the fake at `base_url`: a cloud of its own (every endpoint is the fake), fake
    tokens, its certificate trusted. Only the URL and CA file: a worker in another process can build it."""
    cloud_metadata = {
        "azure_portal": base_url,
        "resource_manager": base_url,
        "active_directory": base_url,
        "aml_resource_id": base_url,
        "storage_endpoint": "core.windows.net",
        "registry_discovery_endpoint": base_url,
    }
    # A cloud name per fake: the SDK keeps every cloud it has seen by name, for the life of the process.
    cloud = f"{CLOUD_NAME}{urlsplit(base_url).port}"
    return AzureMLConnection(FakeCredential(base_url.rstrip("/")), cloud, cloud_metadata, ca_file)


class FakeCredential:
    """A TokenCredential whose tokens are JWTs with the audience and tenant the SDK checks."""

    def __init__(self, audience: str) -> None:
        self.audience = audience

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        import jwt
        from azure.core.credentials import AccessToken

        expires = int(time.time()) + 3600
        claims = {"oid": str(uuid.UUID(int=1)), "tid": TENANT, "aud": self.audience, "exp": expires}
        return AccessToken(jwt.encode(claims, "unsigned-test-token-key-of-32-bytes!", algorithm="HS256"), expires)

    def close(self) -> None:
        pass


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}
