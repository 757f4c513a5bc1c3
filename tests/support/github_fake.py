"""A local HTTPS GitHub REST API: what the `github` action calls, checked as GitHub checks it.

The contract (REST API version 2022-11-28; the same paths under GitHub Enterprise Server's /api/v3):
  POST /app/installations/{installation_id}/access_tokens     Authorization: Bearer <App JWT>
       The JWT must verify with the App's public key (RS256), `iss` the App id, `exp` in the future and at
       most 10 minutes after `iat`. 201 {"token", "expires_at"}; 401 for a JWT that does not verify; 404 for
       an installation the App does not have. `{"repositories": [name, ...]}` narrows the token to those
       repositories of the owner; 422 when one is not in the installation.
  POST /repos/{owner}/{repo}/dispatches                         {"event_type", "client_payload"}
       `event_type` 1-100 characters; `client_payload` an object of at most 10 top-level properties. 204.
  POST /repos/{owner}/{repo}/actions/workflows/{file or id}/dispatches   {"ref", "inputs"}
       The workflow must exist and declare `workflow_dispatch`; `ref` must exist; at most 25 inputs, each
       declared by the workflow, values strings; required inputs present. 204.
  Authorization: Bearer (or token) <installation token or fine-grained token>; 401 otherwise.
  A repository the token cannot see is 404 {"message": "Not Found"}, as GitHub hides private repositories.
Rate limits are scripted: `secondary_rate_limit(retry_after=...)` or `(reset_in=...)` answer the next
request 403 with GitHub's headers and message.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from tests.support.https_fake import Answer, HttpsFake, Request

DOCS = "https://docs.github.com/rest"
MAX_PAYLOAD_PROPERTIES = 10
MAX_WORKFLOW_INPUTS = 25
TOKEN_LIFETIME_SECONDS = 3600


@dataclass
class Workflow:
    inputs: dict[str, bool]  # name -> required
    dispatchable: bool = True  # declares `on: workflow_dispatch`
    id: int = field(default_factory=lambda: uuid.uuid4().int % 10**8)


@dataclass
class App:
    id: int
    public_key_pem: bytes
    installations: dict[int, set[str]]  # installation id -> repositories it may reach


@dataclass
class Dispatch:
    repository: str
    kind: str  # "repository_dispatch" or "workflow_dispatch"
    body: dict[str, Any]
    token: str


class GitHubFake(HttpsFake):
    def __init__(self) -> None:
        super().__init__()
        self.apps: dict[int, App] = {}
        self.tokens: dict[str, set[str]] = {}  # token -> repositories it may dispatch to
        self.repositories: dict[str, dict[str, Workflow]] = {}  # owner/name -> workflows by file name
        self.branches: dict[str, set[str]] = {}
        self.dispatches: list[Dispatch] = []
        self.issued: list[str] = []  # installation tokens handed out

    # ---- what tests set up ----------------------------------------------------------------------

    def add_repository(self, name: str, workflows: dict[str, Workflow] | None = None) -> None:
        self.repositories[name] = workflows or {}
        self.branches[name] = {"main"}

    def add_token(self, token: str, *repositories: str) -> None:
        self.tokens[token] = set(repositories)

    def add_app(self, app_id: int, public_key_pem: bytes, installations: dict[int, set[str]]) -> None:
        self.apps[app_id] = App(app_id, public_key_pem, installations)

    def secondary_rate_limit(self, *, retry_after: int | None = None, reset_in: int | None = None) -> None:
        """The next request is refused as GitHub refuses a burst of content-creating requests."""
        headers = {"x-ratelimit-limit": "5000", "x-ratelimit-used": "12"}
        if retry_after is not None:
            headers["retry-after"] = str(retry_after)
            headers["x-ratelimit-remaining"] = "4988"
        if reset_in is not None:
            headers["x-ratelimit-remaining"] = "0"
            headers["x-ratelimit-reset"] = str(int(time.time()) + reset_in)
        message = (
            "You have exceeded a secondary rate limit and have been temporarily blocked from content creation. "
            "Please retry your request again later."
        )
        self.script(Answer(403, {"message": message, "documentation_url": DOCS}, headers))

    def reset(self) -> None:
        self.forget()
        self.apps.clear()
        self.tokens.clear()
        self.repositories.clear()
        self.branches.clear()
        self.dispatches.clear()
        self.issued.clear()

    # ---- the contract -------------------------------------------------------------------------------

    def answer(self, request: Request) -> Answer:
        if request.method != "POST":
            return _error(404, "Not Found")
        path = request.path.removeprefix("/api/v3")  # GitHub Enterprise Server serves the API there
        if found := re.fullmatch(r"/app/installations/(\d+)/access_tokens", path):
            return self._installation_token(request, int(found[1]))
        if found := re.fullmatch(r"/repos/([^/]+/[^/]+)/dispatches", path):
            return self._dispatch(request, found[1], self._repository_dispatch)
        if found := re.fullmatch(r"/repos/([^/]+/[^/]+)/actions/workflows/([^/]+)/dispatches", path):
            return self._dispatch(
                request, found[1], lambda r, repo, body: self._workflow_dispatch(repo, found[2], body)
            )
        return _error(404, "Not Found")

    def _installation_token(self, request: Request, installation_id: int) -> Answer:
        import jwt

        bearer = _credential(request)
        try:
            unverified = jwt.decode(bearer or "", options={"verify_signature": False})
            app = self.apps.get(int(unverified.get("iss", 0)))
        except (jwt.PyJWTError, ValueError, TypeError):
            return _error(401, "A JSON web token could not be decoded")
        if app is None:
            return _error(401, "Integration not found")
        try:
            claims = jwt.decode(
                bearer, app.public_key_pem, algorithms=["RS256"], options={"require": ["iat", "exp", "iss"]}
            )
        except jwt.ExpiredSignatureError:
            return _error(
                401,
                "'Expiration time' claim ('exp') must be a numeric value representing the future time at which "
                "the assertion expires",
            )
        except jwt.PyJWTError:
            return _error(401, "A JSON web token could not be decoded")
        if claims["exp"] - claims["iat"] > 600:
            return _error(401, "'Expiration time' claim ('exp') is too far in the future")
        if claims["iat"] > time.time() + 60:
            return _error(
                401, "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued"
            )
        if installation_id not in app.installations:
            return _error(404, "Not Found")
        reachable = set(app.installations[installation_id])
        try:
            wanted = (request.json() if request.body else {}).get("repositories")
        except (ValueError, AttributeError):
            return _error(400, "Problems parsing JSON")
        if wanted is not None:
            narrowed = {repository for repository in reachable if repository.split("/", 1)[1] in wanted}
            if len(narrowed) != len(set(wanted)):
                return _invalid("There is at least one repository that does not exist or is not accessible to the "
                                "parent installation.")  # fmt: skip
            reachable = narrowed
        token = f"ghs_{uuid.uuid4().hex}"
        self.tokens[token] = reachable
        self.issued.append(token)
        expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + TOKEN_LIFETIME_SECONDS))
        return Answer(
            201,
            {
                "token": token,
                "expires_at": expires,
                "permissions": {"contents": "write", "actions": "write"},
                "repository_selection": "selected",
            },
        )

    def _dispatch(self, request: Request, repository: str, handle: Any) -> Answer:
        token = _credential(request)
        if token not in self.tokens:
            return _error(401, "Bad credentials")
        if repository not in self.repositories or repository not in self.tokens[token]:
            return _error(404, "Not Found")
        if request.headers.get("content-type", "").split(";")[0] != "application/json":
            return _error(415, "Unsupported 'Content-Type' header")
        try:
            body = request.json()
        except ValueError:
            return _error(400, "Problems parsing JSON")
        if not isinstance(body, dict):
            return _error(400, "Problems parsing JSON")
        answer = handle(request, repository, body)
        if answer.status == 204:
            kind = "workflow_dispatch" if "/actions/workflows/" in request.path else "repository_dispatch"
            with self._lock:
                self.dispatches.append(Dispatch(repository, kind, body, token))
        return answer

    def _repository_dispatch(self, request: Request, repository: str, body: dict[str, Any]) -> Answer:
        event_type = body.get("event_type")
        if not isinstance(event_type, str) or not 1 <= len(event_type) <= 100:
            return _invalid("event_type must be a string of 1 to 100 characters")
        payload = body.get("client_payload", {})
        if not isinstance(payload, dict):
            return _invalid("For 'properties/client_payload', is not an object.")
        if len(payload) > MAX_PAYLOAD_PROPERTIES:
            return _invalid(
                f"For 'properties/client_payload', {len(payload)} is greater than the maximum of "
                f"{MAX_PAYLOAD_PROPERTIES} properties."
            )
        return Answer(204)

    def _workflow_dispatch(self, repository: str, workflow_id: str, body: dict[str, Any]) -> Answer:
        workflows = self.repositories[repository]
        workflow = workflows.get(workflow_id) or next((w for w in workflows.values() if str(w.id) == workflow_id), None)
        if workflow is None:
            return _error(404, "Not Found")
        if not workflow.dispatchable:
            return _invalid("Workflow does not have 'workflow_dispatch' trigger")
        ref = body.get("ref")
        if not isinstance(ref, str) or not ref:
            return _invalid("ref is required")
        if ref.removeprefix("refs/heads/") not in self.branches[repository]:
            return _invalid(f"No ref found for: {ref}")
        inputs = body.get("inputs", {})
        if not isinstance(inputs, dict):
            return _invalid("For 'properties/inputs', is not an object.")
        if len(inputs) > MAX_WORKFLOW_INPUTS:
            return _invalid(f"you may only define up to {MAX_WORKFLOW_INPUTS} `inputs` for a `workflow_dispatch` event")
        if unexpected := sorted(set(inputs) - set(workflow.inputs)):
            return _invalid(f"Unexpected inputs provided: {unexpected}")
        if not_strings := sorted(name for name, value in inputs.items() if not isinstance(value, str)):
            return _invalid(f"For 'properties/inputs', values of {not_strings} are not strings.")
        for name, required in workflow.inputs.items():
            if required and name not in inputs:
                return _invalid(f"Required input '{name}' not provided")
        return Answer(204)


def _credential(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value if scheme.lower() in ("bearer", "token") and value else None


def _error(status: int, message: str) -> Answer:
    return Answer(status, {"message": message, "documentation_url": DOCS, "status": str(status)})


def _invalid(message: str) -> Answer:
    return _error(422, message)
