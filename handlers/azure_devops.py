"""`azure_devops`: queue a run of an Azure Pipelines pipeline (Pipelines REST API, "Runs - Run Pipeline").

Options: `organization`, `project`, `pipeline` (the pipeline's numeric id), `branch`, `parameters`
(templated template parameters), `variables` (templated; the pipeline must allow setting them at queue
time), `key_parameter` (the template parameter that receives the ledger key, `ledger_key` unless set;
false to send none), `token` (a PAT setting; the app's managed identity otherwise), `api_url` (Azure
DevOps Server), `allow_private`.

Azure DevOps has no idempotency key for runs: the ledger makes sure one event queues one run, and the
ledger key goes in as a template parameter so that the pipeline can recognise the one repeat the ledger
cannot rule out (docs/cicd.md).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote

from handlers.common import http, rest
from handlers.common.templated_json import TemplatedJson
from shared.actions import Action, ActionContext, ActionFailed, ActionOutcome, Preview, PreviewPart
from shared.problems import Problems

DEFAULT_API = "https://dev.azure.com"
API_VERSION = "7.1"
# The Azure DevOps resource in Entra ID: a managed identity asks for a token with this audience.
RESOURCE = "499b84ac-1321-427f-aa17-267ca6975798"
KEY_PARAMETER = "ledger_key"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


class AzureDevOpsAction(Action):
    kind = "azure_devops"
    OPTIONS: ClassVar[Mapping[str, bool]] = {
        "organization": True,
        "project": True,
        "pipeline": True,
        "branch": False,
        "parameters": False,
        "variables": False,
        "key_parameter": False,
        "token": False,
        "api_url": False,
        "allow_private": False,
    }

    def configure(self, problems: Problems, line: int) -> None:
        self.organization = str(self.options.get("organization") or "")
        self.project = str(self.options.get("project") or "")
        for name in ("organization", "project"):
            value = getattr(self, name)
            if value and ("/" in value or value != value.strip()):
                problems.add(line, f"azure_devops: {name} is a name without '/', got {value!r}")
        pipeline = self.options.get("pipeline")
        self.pipeline = int(pipeline) if isinstance(pipeline, int | str) and str(pipeline).isdigit() else 0
        if pipeline not in (None, "") and self.pipeline <= 0:
            problems.add(
                line,
                f"azure_devops: pipeline is the pipeline's number (definitionId in its URL), got {pipeline!r}",
            )
        branch = str(self.options.get("branch") or "")
        self.ref = branch if not branch or branch.startswith("refs/") else f"refs/heads/{branch}"
        self.api_url = str(self.options.get("api_url") or DEFAULT_API).rstrip("/")
        if problem := http.check_url(self.api_url):
            problems.add(line, f"azure_devops: api_url {problem}")
        self.allow_private = bool(self.options.get("allow_private", False))
        self.token = str(self.options.get("token") or "")
        key_parameter = self.options.get("key_parameter", True)  # true: the default name; false: none
        self.key_parameter = (
            "" if key_parameter in (None, False, "") else KEY_PARAMETER if key_parameter is True else str(key_parameter)
        )
        if self.key_parameter and not _NAME.match(self.key_parameter):
            problems.add(line, f"azure_devops: key_parameter {self.key_parameter!r} is not a parameter name")
        self.parameters = TemplatedJson.parse(
            self.options.get("parameters"), problems, line, "azure_devops: parameters", self.event_types, flat=True
        )
        if self.key_parameter in self.parameters.names:
            problems.add(line, f"azure_devops: parameters.{self.key_parameter} is set by the action (key_parameter)")
        self.variables = TemplatedJson.parse(
            self.options.get("variables"), problems, line, "azure_devops: variables", self.event_types, flat=True
        )

    @property
    def target(self) -> str:
        return http.safe_target(self._url())

    def _url(self) -> str:
        where = f"{quote(self.organization, safe='')}/{quote(self.project, safe='')}"
        return f"{self.api_url}/{where}/_apis/pipelines/{self.pipeline}/runs?api-version={API_VERSION}"

    def run(self, ctx: ActionContext) -> ActionOutcome:
        headers = {"Accept": "application/json", "Authorization": self._authorization(ctx)}
        response = rest.send(self._url(), self._body(ctx), headers, timeout=ctx.remaining(),
                             allow_private=self.allow_private)  # fmt: skip
        what = f"run pipeline {self.pipeline} in {self.organization}/{self.project}"
        if response.status_code == 200:
            run = _json(response)
            run_id = run.get("id")
            link = ((run.get("_links") or {}).get("web") or {}).get("href") or run.get("url") or ""
            return ActionOutcome(
                detail=f"{what} -> run {run_id} queued",
                record={"run_id": run_id, "run_url": link},
            )
        raise self._failure(response, what)

    def preview(self, ctx: ActionContext) -> Preview:
        body = http.json_bytes(self._body(ctx))
        headers = {"Accept": "application/json", "Authorization": "<token>"}  # no token is fetched for a preview
        return Preview("http", f"run pipeline {self.pipeline} in {self.organization}/{self.project}",
                       (PreviewPart("request.http", http.request_preview(self._url(), headers, body)),))  # fmt: skip

    def _body(self, ctx: ActionContext) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if self.ref:
            body["resources"] = {"repositories": {"self": {"refName": self.ref}}}
        parameters = self.parameters.render(ctx, "azure_devops: parameters")
        if self.key_parameter:
            parameters[self.key_parameter] = ctx.key
        if parameters:
            body["templateParameters"] = parameters
        if self.variables.names:
            variables = self.variables.render(ctx, "azure_devops: variables")
            body["variables"] = {name: {"value": value, "isSecret": False} for name, value in variables.items()}
        return body

    def _authorization(self, ctx: ActionContext) -> str:
        if self.token:
            return "Basic " + base64.b64encode(f":{self.token}".encode()).decode()
        from azure.core.exceptions import ClientAuthenticationError

        from shared.platform.identity import app_credential

        try:
            token = app_credential(ctx.settings.client_id or None).get_token(
                f"{RESOURCE}/.default"
            )
        except ClientAuthenticationError as error:
            raise ActionFailed(f"azure_devops: no token for Azure DevOps: {error.message}", retryable=True) from None
        return f"Bearer {token.token}"

    def _failure(self, response: http.Answer, what: str) -> ActionFailed:
        status = response.status_code
        credential = "the PAT" if self.token else "the app's managed identity"
        if status == 203:  # the service's answer to a PAT it does not accept: its sign-in page
            return ActionFailed(
                f"{what} -> 203 (the sign-in page): Azure DevOps did not accept the PAT; it is wrong, expired "
                f"or not valid for organization {self.organization}"
            )
        if status in (401, 403):
            fix = (
                "check that the PAT has not expired and has the Build (Read & execute) scope"
                if self.token
                else f"add the app's managed identity to organization {self.organization} (Organization settings, "
                f"Users, Add users, access level Basic) and let it queue builds on pipeline {self.pipeline}"
            )
            return rest.failed(response, what, hint=f"{credential} was refused: {fix}")
        if status == 404:
            return rest.failed(
                response,
                what,
                hint=f"no pipeline {self.pipeline} in project {self.project} of organization {self.organization}; "
                "the id is the definitionId in the pipeline's URL",
            )
        if status == 400:
            names = [*self.parameters.names, *([self.key_parameter] if self.key_parameter else [])]
            hint = f"the pipeline's YAML must declare the parameters {', '.join(names)}" if names else ""
            return rest.failed(response, what, hint=hint)
        return rest.failed(response, what, retryable=status in http.RETRYABLE_STATUS)


def _json(response: http.Answer) -> dict[str, Any]:
    try:
        decoded = response.json()
    except ValueError:
        return {}
    return decoded if isinstance(decoded, dict) else {}
