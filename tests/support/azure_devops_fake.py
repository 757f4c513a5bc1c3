"""A local HTTPS Azure DevOps: the Pipelines "Runs - Run Pipeline" REST call, checked as the service checks it.

The contract:
  POST /{organization}/{project}/_apis/pipelines/{pipelineId}/runs?api-version=7.1
       {"resources": {"repositories": {"self": {"refName": "refs/heads/<branch>"}}},
        "templateParameters": {name: value}, "variables": {name: {"value": text, "isSecret": bool}}}
  200 the run: {"id", "name", "state": "inProgress", "url", "_links": {"web": {"href"}}, "pipeline": {...}}
  Authorization: Bearer <Entra token whose `aud` is the Azure DevOps resource 499b84ac-...> for an identity
  added to the organisation, or Basic base64(":" + PAT). A wrong PAT gets 203 with the sign-in page, as the
  service answers; a token for another audience or an identity outside the organisation gets 401.
  404 {"message": "...", "typeKey": "PipelineNotFoundException"} for an unknown pipeline or project;
  400 {"typeKey": "PipelineValidationException"} for a parameter the pipeline does not declare, a branch that
  does not exist, or a variable not settable at queue time.
Throttling is scripted: `throttle(status, retry_after)` answers the next request 429/503 with Retry-After.
"""

from __future__ import annotations

import base64
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from tests.support.https_fake import Answer, HttpsFake, Request, token_claims

RESOURCE = "499b84ac-1321-427f-aa17-267ca6975798"
API_VERSION = "7.1"
SIGN_IN_PAGE = b"<html><head><title>Azure DevOps Services | Sign In</title></head><body></body></html>"


@dataclass
class Pipeline:
    parameters: dict[str, bool] = field(default_factory=dict)  # name -> required
    settable_variables: set[str] = field(default_factory=set)
    branches: set[str] = field(default_factory=lambda: {"main"})


@dataclass
class Run:
    organization: str
    project: str
    pipeline: int
    body: dict[str, Any]
    authorization: str  # "bearer:<client id>" or "pat"


class AzureDevOpsFake(HttpsFake):
    def __init__(self) -> None:
        super().__init__()
        self.pipelines: dict[tuple[str, str, int], Pipeline] = {}
        self.members: dict[str, set[str]] = {}  # organisation -> identities (appid) added to it
        self.pats: dict[str, str] = {}  # PAT -> organisation
        self.runs: list[Run] = []

    def add_pipeline(self, organization: str, project: str, pipeline_id: int, pipeline: Pipeline | None = None) -> None:
        self.pipelines[(organization, project, pipeline_id)] = pipeline or Pipeline()

    def add_member(self, organization: str, client_id: str) -> None:
        self.members.setdefault(organization, set()).add(client_id)

    def add_pat(self, organization: str, pat: str) -> None:
        self.pats[pat] = organization

    def throttle(self, status: int = 429, retry_after: int = 1) -> None:
        message = "Request was blocked due to exceeding usage of resource 'Pipelines' in namespace 'User'."
        self.script(
            Answer(
                status,
                {"message": message, "typeKey": "RequestBlockedException"},
                {"Retry-After": str(retry_after), "X-RateLimit-Resource": "Pipelines"},
            )
        )

    def reset(self) -> None:
        self.forget()
        self.pipelines.clear()
        self.members.clear()
        self.pats.clear()
        self.runs.clear()

    # ---- the contract -------------------------------------------------------------------------------

    def answer(self, request: Request) -> Answer:
        found = re.fullmatch(r"(?:/[^/]+)*?/([^/]+)/([^/]+)/_apis/pipelines/([^/]+)/runs", request.path)
        if request.method != "POST" or not found:
            return _error(404, "The controller for path was not found.", "NotFoundException")
        organization, project, pipeline_text = found[1], found[2], found[3]
        if request.query.get("api-version") != API_VERSION:
            return _error(
                400,
                f"The requested REST API version of {request.query.get('api-version')} is not "
                "supported by this fake (it speaks 7.1).",
                "VssVersionOutOfRangeException",
            )
        who = self._authenticate(request, organization)
        if isinstance(who, Answer):
            return who
        if not pipeline_text.isdigit() or (organization, project, int(pipeline_text)) not in self.pipelines:
            return _error(404, f"Pipeline with id {pipeline_text} not found.", "PipelineNotFoundException")
        pipeline = self.pipelines[(organization, project, int(pipeline_text))]
        try:
            body = request.json()
        except ValueError:
            return _error(400, "The request body could not be parsed as JSON.", "InvalidRequestException")
        if problem := _invalid_run(body, pipeline):
            return _error(400, problem, "PipelineValidationException")
        run_id = len(self.runs) + 1
        with self._lock:
            self.runs.append(Run(organization, project, int(pipeline_text), body, who))
        base = f"{self.url}/{organization}/{project}"
        return Answer(
            200,
            {
                "id": run_id,
                "name": f"20261202.{run_id}",
                "state": "inProgress",
                "result": None,
                "url": f"{base}/_apis/pipelines/{pipeline_text}/runs/{run_id}",
                "_links": {"web": {"href": f"{base}/_build/results?buildId={run_id}"}},
                "pipeline": {"id": int(pipeline_text), "revision": 1, "name": "deploy", "folder": "\\"},
                "templateParameters": body.get("templateParameters", {}),
            },
        )

    def _authenticate(self, request: Request, organization: str) -> str | Answer:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                _, _, pat = base64.b64decode(value).decode().partition(":")
            except ValueError:
                pat = ""
            if self.pats.get(pat) == organization:
                return "pat"
            return Answer(203, SIGN_IN_PAGE, {"Content-Type": "text/html; charset=utf-8"})
        if scheme.lower() == "bearer":
            claims = token_claims(value)
            if claims.get("aud") not in (RESOURCE, f"api://{RESOURCE}"):
                return _error(
                    401,
                    f"TF400813: The token's audience {claims.get('aud')!r} is not Azure DevOps.",
                    "UnauthorizedRequestException",
                )
            if claims.get("appid") not in self.members.get(organization, set()):
                return _error(
                    401,
                    f"TF400813: The user '{claims.get('appid')}' is not authorized to access this resource.",
                    "UnauthorizedRequestException",
                )
            return f"bearer:{claims['appid']}"
        return _error(
            401, "TF400813: The user '' is not authorized to access this resource.", "UnauthorizedRequestException"
        )


def _invalid_run(body: Any, pipeline: Pipeline) -> str | None:
    if not isinstance(body, dict):
        return "The request body must be a JSON object."
    ref = (((body.get("resources") or {}).get("repositories") or {}).get("self") or {}).get("refName")
    if ref is not None and ref.removeprefix("refs/heads/") not in pipeline.branches:
        return f"Could not find the branch {ref} in the repository self."
    parameters = body.get("templateParameters") or {}
    if unexpected := sorted(set(parameters) - set(pipeline.parameters)):
        return f"Unexpected parameter '{unexpected[0]}'"
    for name, required in pipeline.parameters.items():
        if required and name not in parameters:
            return f"A value for the '{name}' parameter must be provided."
    variables = body.get("variables") or {}
    for name, value in variables.items():
        if name not in pipeline.settable_variables:
            return (
                f"You can't set the following variables ({name}). If you want to be able to set these "
                "variables, then edit the pipeline and select Settable at queue time on the variables tab "
                "of the pipeline editor."
            )
        if not isinstance(value, dict) or not isinstance(value.get("value"), str):
            return f'Variable {name} must be {{"value": text}}.'
    return None


def _error(status: int, message: str, type_key: str) -> Answer:
    return Answer(
        status,
        {
            "$id": "1",
            "innerException": None,
            "message": message,
            "typeName": f"{type_key}, Microsoft.Azure.Pipelines.WebApi",
            "typeKey": type_key,
            "errorCode": 0,
            "eventId": 3000,
            "activityId": str(uuid.uuid4()),
        },
    )
