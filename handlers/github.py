"""`github`: start a GitHub Actions workflow through `repository_dispatch` or `workflow_dispatch`.

Options: `repository` (owner/name); `dispatch: {event_type, client_payload}` or
`workflow: {file, ref, inputs, key_input}`; `token` (a fine-grained token setting) or
`app: {id, installation_id, private_key}` (a GitHub App: the action mints a JWT, exchanges it for an
installation token and keeps that until shortly before it expires); `api_url` (GitHub Enterprise Server);
`allow_private`.

GitHub has no idempotency key for dispatches: the ledger makes sure one event dispatches once, and the
ledger key travels as `client_payload.ledger_key` (or the `ledger_key` workflow input) so that a workflow can
recognise the one repeat the ledger cannot rule out (docs/cicd.md).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from handlers.common import http, rest
from handlers.common.templated_json import TemplatedJson
from shared.actions import Action, ActionContext, ActionFailed, ActionOutcome, Preview, PreviewPart
from shared.problems import Problems

DEFAULT_API = "https://api.github.com"
API_HEADERS = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
KEY_FIELD = "ledger_key"
MAX_PAYLOAD_PROPERTIES = 10  # client_payload's top-level properties, GitHub's documented limit
MAX_WORKFLOW_INPUTS = 25  # GitHub Enterprise Server releases before the change to 25 accept 10
JWT_LIFETIME = 540  # GitHub accepts at most 10 minutes; `iat` is back-dated 60 s for clock drift
TOKEN_REFRESH_BEFORE = 300  # an installation token this close to expiring is exchanged again
_REPOSITORY = re.compile(r"^[A-Za-z0-9-]{1,39}/[A-Za-z0-9._-]{1,100}$")
_INPUT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class GitHubApp:
    id: str
    installation_id: int
    private_key: Any  # cryptography's RSAPrivateKey


# (api, app, installation, repository) -> (token, expires): each token reaches only its route's repository.
_tokens: dict[tuple[str, str, int, str], tuple[str, float]] = {}
_tokens_lock = threading.Lock()


class GitHubAction(Action):
    kind = "github"
    OPTIONS: ClassVar[Mapping[str, bool]] = {
        "repository": True,
        "dispatch": False,
        "workflow": False,
        "token": False,
        "app": False,
        "api_url": False,
        "allow_private": False,
    }

    def configure(self, problems: Problems, line: int) -> None:
        self.repository = str(self.options.get("repository") or "")
        if self.repository and not _REPOSITORY.match(self.repository):
            problems.add(line, f"github: repository must be owner/name, got {self.repository!r}")
        self.api_url = str(self.options.get("api_url") or DEFAULT_API).rstrip("/")
        if problem := http.check_url(self.api_url):
            problems.add(line, f"github: api_url {problem}")
        self.allow_private = bool(self.options.get("allow_private", False))
        self.event_type, self.payload, self.workflow, self.ref, self.inputs, self.key_input = "", None, "", "", None, ""
        dispatch, workflow = self.options.get("dispatch"), self.options.get("workflow")
        if (dispatch is None) == (workflow is None):
            problems.add(line, "github: give exactly one of dispatch: {event_type, ...} or workflow: {file, ref, ...}")
        elif dispatch is not None:
            self._configure_dispatch(dispatch, problems, line)
        else:
            self._configure_workflow(workflow, problems, line)
        self.token = str(self.options.get("token") or "")
        self.app = None
        if ("token" in self.options) == ("app" in self.options):
            problems.add(
                line, "github: give exactly one of token: ${SETTING} or app: {id, installation_id, private_key}"
            )
        elif "app" in self.options:
            self.app = _app(self.options["app"], problems, line)

    def _configure_dispatch(self, spec: Any, problems: Problems, line: int) -> None:
        if not isinstance(spec, Mapping) or set(spec) - {"event_type", "client_payload"}:
            problems.add(line, "github: dispatch is {event_type: name, client_payload: {...}}")
            return
        self.event_type = str(spec.get("event_type") or "")
        if not 1 <= len(self.event_type) <= 100:
            problems.add(line, "github: dispatch.event_type is required, 1 to 100 characters")
        if "client_payload" in spec:
            self.payload = TemplatedJson.parse(
                spec["client_payload"], problems, line, "github: dispatch.client_payload", self.event_types
            )
            if KEY_FIELD in self.payload.names:
                problems.add(line, f"github: dispatch.client_payload.{KEY_FIELD} is set by the action")
            if len(self.payload.names) + 1 > MAX_PAYLOAD_PROPERTIES:
                problems.add(
                    line,
                    f"github: dispatch.client_payload has {len(self.payload.names)} properties; GitHub takes at most "
                    f"{MAX_PAYLOAD_PROPERTIES} and the action adds {KEY_FIELD} (nest the rest in a mapping)",
                )

    def _configure_workflow(self, spec: Any, problems: Problems, line: int) -> None:
        if not isinstance(spec, Mapping) or set(spec) - {"file", "ref", "inputs", "key_input"}:
            problems.add(
                line, "github: workflow is {file: deploy.yml, ref: main, inputs: {...}, key_input: ledger_key}"
            )
            return
        self.workflow = str(spec.get("file") or "")
        if not (self.workflow.isdigit() or re.fullmatch(r"[A-Za-z0-9._-]+\.ya?ml", self.workflow)):
            problems.add(line, "github: workflow.file is the workflow's file name (deploy.yml) or numeric id")
        self.ref = str(spec.get("ref") or "")
        if not self.ref:
            problems.add(line, "github: workflow.ref (the branch or tag to run the workflow from) is required")
        key_input = spec.get("key_input", True)  # true: the default name; false: no key input
        self.key_input = "" if key_input in (None, False, "") else KEY_FIELD if key_input is True else str(key_input)
        if self.key_input and not _INPUT_NAME.match(self.key_input):
            problems.add(line, f"github: workflow.key_input {self.key_input!r} is not a valid input name")
        self.inputs = TemplatedJson.parse(
            spec.get("inputs"), problems, line, "github: workflow.inputs", self.event_types, flat=True
        )
        if self.key_input in self.inputs.names:
            problems.add(line, f"github: workflow.inputs.{self.key_input} is set by the action (key_input)")
        count = len(self.inputs.names) + bool(self.key_input)
        if count > MAX_WORKFLOW_INPUTS:
            problems.add(line, f"github: workflow sends {count} inputs; GitHub takes at most {MAX_WORKFLOW_INPUTS}")

    @property
    def target(self) -> str:
        return http.safe_target(self._url())

    def _url(self) -> str:
        if self.workflow:
            return f"{self.api_url}/repos/{self.repository}/actions/workflows/{self.workflow}/dispatches"
        return f"{self.api_url}/repos/{self.repository}/dispatches"

    def run(self, ctx: ActionContext) -> ActionOutcome:
        token = self.token or self._installation_token(ctx)
        body = self._body(ctx)
        headers = {**API_HEADERS, "Authorization": f"Bearer {token}"}
        response = rest.send(self._url(), body, headers, timeout=ctx.remaining(), allow_private=self.allow_private)
        what = self._what
        if response.status_code in (200, 204):
            return ActionOutcome(
                detail=f"{what} -> {self.repository} ({response.status_code})",
                record={"repository": self.repository},
            )
        raise self._failure(response, f"{what} {self.repository}")

    @property
    def _what(self) -> str:
        if self.workflow:
            return f"workflow_dispatch {self.workflow}@{self.ref}"
        return f"repository_dispatch {self.event_type}"

    def preview(self, ctx: ActionContext) -> Preview:
        body = http.json_bytes(self._body(ctx))
        headers = {**API_HEADERS, "Authorization": "Bearer <token>"}  # no token is fetched for a preview
        return Preview("http", f"{self._what} -> {self.repository}",
                       (PreviewPart("request.http", http.request_preview(self._url(), headers, body)),))  # fmt: skip

    def _body(self, ctx: ActionContext) -> dict[str, Any]:
        if self.workflow:
            assert self.inputs is not None
            inputs = self.inputs.render(ctx, "github: workflow.inputs")
            if self.key_input:
                inputs[self.key_input] = ctx.key
            return {"ref": self.ref, "inputs": inputs}
        payload = {"route": ctx.route, "event": ctx.event.to_dict()} if self.payload is None else (
            self.payload.render(ctx, "github: dispatch.client_payload")
        )  # fmt: skip
        return {"event_type": self.event_type, "client_payload": {**payload, KEY_FIELD: ctx.key}}

    def _failure(self, response: http.Answer, what: str) -> ActionFailed:
        if (wait := _rate_limit_wait(response)) is not None:
            return ActionFailed(
                f"{what} -> {response.status_code}: GitHub rate limit, retry in {wait:.0f}s",
                retryable=True,
                retry_after=wait,
            )
        status = response.status_code
        credential = f"GitHub App {self.app.id} installation {self.app.installation_id}" if self.app else "token"
        if status == 401:
            if self.app is not None:  # revoked or expired early: the next attempt exchanges a new one
                _forget_token(self._token_key())
                return rest.failed(response, what, retryable=True, hint="installation token refused; exchanging anew")
            return rest.failed(response, what, hint="the token expired or was revoked: renew it in its app setting")
        if status == 404:
            owner = self.repository.split("/")[0]
            place = f"workflow {self.workflow} in {self.repository}" if self.workflow else self.repository
            fix = (
                f"is the GitHub App installed on {owner} with access to {self.repository}?"
                if self.app
                else f"does the fine-grained token cover {self.repository}?"
            )
            if self.workflow:
                fix += f" Is {self.workflow} under .github/workflows on the default branch?"
            return rest.failed(response, what, hint=f"{place} not found or not visible to the {credential}: {fix}")
        if status == 403:
            needed = "Actions: write" if self.workflow else "Contents: write"
            return rest.failed(
                response, what, hint=f"the {credential} needs the {needed} permission on {self.repository}"
            )
        if status == 422 and self.workflow:
            names = (
                ", ".join([*self.inputs.names, *([self.key_input] if self.key_input else [])]) if self.inputs else ""
            )
            fix = f"does {self.workflow} on {self.ref} declare workflow_dispatch inputs {names or '(none)'}?"
            return rest.failed(response, what, hint=fix)
        return rest.failed(response, what, retryable=status in http.RETRYABLE_STATUS)

    def _token_key(self) -> tuple[str, str, int, str]:
        assert self.app is not None
        return (self.api_url, self.app.id, self.app.installation_id, self.repository)

    def _installation_token(self, ctx: ActionContext) -> str:
        assert self.app is not None
        key = self._token_key()
        with _tokens_lock:  # concurrent first calls wait for one exchange
            cached = _tokens.get(key)
            if cached and cached[1] - time.time() > TOKEN_REFRESH_BEFORE:
                return cached[0]
            url = f"{self.api_url}/app/installations/{self.app.installation_id}/access_tokens"
            headers = {**API_HEADERS, "Authorization": f"Bearer {_app_jwt(self.app)}"}
            scope = {"repositories": [self.repository.split("/", 1)[1]]}  # least privilege: this repository only
            response = rest.send(url, scope, headers, timeout=ctx.remaining(), allow_private=self.allow_private)
            if response.status_code == 201:
                token, expires = _read_token(response)
                _tokens[key] = (token, expires)
                return token
        what = f"GitHub App {self.app.id}: installation token"
        if (wait := _rate_limit_wait(response)) is not None:
            raise ActionFailed(f"{what} -> {response.status_code}: GitHub rate limit", retryable=True, retry_after=wait)
        hint = {
            404: f"the App has no installation {self.app.installation_id}: install it on the account that owns "
            f"{self.repository} and use the number at the end of the installation's settings URL",
            422: f"the installation has no access to {self.repository}: is the GitHub App installed on "
            f"{self.repository.split('/')[0]} with access to {self.repository}?",
            401: "GitHub refused the App's JWT: check app.id and that private_key is a current key of the App",
        }.get(response.status_code)
        if hint:
            raise rest.failed(response, what, hint=hint)
        raise rest.failed(response, what, retryable=response.status_code in http.RETRYABLE_STATUS)


def _app(spec: Any, problems: Problems, line: int) -> GitHubApp | None:
    if not isinstance(spec, Mapping) or set(spec) != {"id", "installation_id", "private_key"}:
        problems.add(line, "github: app is {id: <App id>, installation_id: <number>, private_key: ${SETTING}}")
        return None
    app_id, installation = str(spec["id"]).strip(), str(spec["installation_id"]).strip()
    if not app_id:
        problems.add(line, "github: app.id is required (the App ID or Client ID on the App's settings page)")
    if not installation.isdigit():
        problems.add(line, f"github: app.installation_id must be a number, got {installation!r}")
    key = _private_key(str(spec["private_key"] or ""))
    if isinstance(key, str):
        problems.add(line, f"github: app.private_key {key}")
        return None
    return GitHubApp(app_id, int(installation), key) if app_id and installation.isdigit() else None


def _private_key(pem: str) -> Any:
    """The App's RSA key, or a problem (never quoting the key)."""
    if not pem:
        return "is required (the .pem file GitHub generated, from a setting or Key Vault reference)"
    if "\\n" in pem and "\n" not in pem:  # a PEM pasted into a one-line setting
        pem = pem.replace("\\n", "\n")
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        return "is not a PEM private key (paste the whole .pem file, BEGIN and END lines included)"
    if not isinstance(key, rsa.RSAPrivateKey):
        return "is not an RSA key (GitHub App keys are RSA)"
    return key


def _app_jwt(app: GitHubApp) -> str:
    import jwt

    now = int(time.time())
    return jwt.encode({"iat": now - 60, "exp": now + JWT_LIFETIME, "iss": app.id}, app.private_key, algorithm="RS256")


def _read_token(response: http.Answer) -> tuple[str, float]:
    try:
        payload = response.json()
        expires = datetime.fromisoformat(payload["expires_at"].replace("Z", "+00:00")).timestamp()
        return str(payload["token"]), expires
    except (ValueError, KeyError, TypeError, AttributeError) as error:  # never echo the answer: it holds a token
        raise ActionFailed(
            f"GitHub answered the installation token request without a readable token ({type(error).__name__})",
            retryable=True,
        ) from None


def _forget_token(key: tuple[str, str, int, str]) -> None:
    with _tokens_lock:
        _tokens.pop(key, None)


def _rate_limit_wait(response: http.Answer) -> float | None:
    """Seconds GitHub asks to wait before trying again, for a 403/429 that is a (secondary) rate limit:
    Retry-After; else x-ratelimit-reset when x-ratelimit-remaining is 0; else a minute, as GitHub advises."""
    if response.status_code not in (403, 429):
        return None
    if (wait := http.retry_after_seconds(response.headers)) is not None:
        return wait
    reset = response.headers.get("x-ratelimit-reset", "")
    if response.headers.get("x-ratelimit-remaining") == "0" and reset.isdigit():
        return max(0.0, int(reset) - time.time())
    if response.status_code == 429 or "rate limit" in rest.message(response, "message").lower():
        return 60.0
    return None
