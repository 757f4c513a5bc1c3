"""The `github` action against a local HTTPS GitHub (tests/support/github_fake.py) that verifies the App's
JWT with the App's public key and checks the dispatch payload rules, events delivered through the app's
own functions, outcomes read back from the ledger in Azurite."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from handlers import github
from tests.support.cicd import trust
from tests.support.delivery import only_record
from tests.support.events import load_event
from tests.support.github_fake import GitHubFake, Workflow

MODEL = load_event("eventgrid/model_registered.json")
OTHER_MODEL = {**MODEL, "id": "0b6c5f3e-1111-4e8a-9b21-6f0e1d2c3b4a"}
KEY = f"{MODEL['id']}/deploy/0"
REPOSITORY = "contoso/churn-model"
APP_ID, INSTALLATION = 12345, 777


@pytest.fixture(scope="module")
def app_key() -> tuple[str, bytes]:
    """A GitHub App's private key (PEM, as the app setting holds it) and its public key (GitHub's side)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()  # fmt: skip
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


@pytest.fixture(scope="module")
def server() -> Iterator[GitHubFake]:
    fake = GitHubFake()
    yield fake
    fake.close()


@pytest.fixture
def gh(server: GitHubFake, app_key: tuple[str, bytes], monkeypatch: pytest.MonkeyPatch) -> GitHubFake:
    server.reset()
    server.add_repository(REPOSITORY, {"deploy.yml": Workflow({"model": True, "version": False, "ledger_key": False})})
    server.add_app(APP_ID, app_key[1], {INSTALLATION: {REPOSITORY}})
    server.add_token("github_pat_fine_grained", REPOSITORY)
    trust(monkeypatch, server.ca_bundle)
    monkeypatch.setattr(github, "_tokens", {})  # a fresh worker's token cache
    return server


def dispatch_route(auth: str = "app", extra: str = "") -> str:
    credential = (
        f'app: {{id: {APP_ID}, installation_id: {INSTALLATION}, private_key: "${{GITHUB_APP_KEY}}"}}'
        if auth == "app"
        else 'token: "${GITHUB_TOKEN}"'
    )
    return f"""
routes:
  - name: deploy
    events: [ModelRegistered]
    actions:
      - github:
          repository: {REPOSITORY}
          dispatch:
            event_type: model-registered
            client_payload:
              model: "{{{{ event.fields.model_name }}}}"
              version: "{{{{ event.fields.model_version }}}}"
          {credential}
          api_url: "${{GITHUB_API}}"
          allow_private: true
          retry: {{attempts: 3, backoff: 0s}}
{extra}"""


def settings(gh: GitHubFake, app_key: tuple[str, bytes], **more: str) -> dict[str, str]:
    return {"GITHUB_API": gh.url, "GITHUB_APP_KEY": app_key[0], "GITHUB_TOKEN": "github_pat_fine_grained", **more}


def test_an_app_dispatch_carries_the_templated_payload_and_the_ledger_key(app_env, gh, app_key, deliver) -> None:
    app_env(dispatch_route(), **settings(gh, app_key))
    delivery = deliver("model_registered", MODEL)
    assert delivery.statuses() == ["done"], delivery.reports
    (sent,) = gh.dispatches
    assert sent.kind == "repository_dispatch" and sent.repository == REPOSITORY
    assert sent.body == {
        "event_type": "model-registered",
        "client_payload": {"model": "churn-classifier", "version": "7", "ledger_key": KEY},
    }
    assert sent.token in gh.issued  # the installation token the JWT was exchanged for
    (exchange,) = gh.sent("POST", "/access_tokens")
    assert exchange.json() == {"repositories": ["churn-model"]}  # a token for this repository only
    done = only_record(MODEL["id"])
    assert done.status == "done" and REPOSITORY in done.detail and done.extra["repository"] == REPOSITORY
    # A second event reuses the worker's installation token: one exchange in all.
    assert deliver("model_registered", OTHER_MODEL).statuses() == ["done"]
    assert len(gh.sent("POST", "/access_tokens")) == 1 and len(gh.dispatches) == 2


def test_a_redelivery_dispatches_nothing(app_env, gh, app_key, deliver) -> None:
    app_env(dispatch_route(), **settings(gh, app_key))
    assert deliver("model_registered", MODEL).statuses() == ["done"]
    assert deliver("model_registered", MODEL).statuses() == ["skipped"]
    assert len(gh.dispatches) == 1


def test_a_secondary_rate_limit_is_waited_out_within_the_budget(app_env, gh, app_key, deliver) -> None:
    app_env(dispatch_route(auth="token"), **settings(gh, app_key))
    gh.secondary_rate_limit(retry_after=1)
    delivery = deliver("model_registered", MODEL)
    (report,) = delivery.reports
    assert (report.status, report.attempts) == ("done", 2), report
    assert len(gh.dispatches) == 1


def test_a_rate_limit_beyond_the_budget_is_left_to_event_grid_and_the_redelivery_dispatches(
    app_env, gh, app_key, deliver
) -> None:
    app_env(dispatch_route(auth="token"), **settings(gh, app_key))
    gh.secondary_rate_limit(reset_in=120)  # x-ratelimit-reset two minutes away; the budget is 10 s
    first = deliver("model_registered", MODEL)
    assert first.error is not None and first.statuses() == ["failed"]
    assert "rate limit" in first.reports[0].detail and "Event Grid will redeliver" in first.reports[0].detail
    assert gh.dispatches == []
    assert deliver("model_registered", MODEL).statuses() == ["done"]
    assert len(gh.dispatches) == 1


def test_a_workflow_dispatch_sends_string_inputs_and_the_key_input(app_env, gh, app_key, deliver) -> None:
    route = f"""
routes:
  - name: deploy
    events: [ModelRegistered]
    actions:
      - github:
          repository: {REPOSITORY}
          workflow: {{file: deploy.yml, ref: main, inputs: {{model: "{{{{ event.fields.model_name }}}}", version: 7}}}}
          token: "${{GITHUB_TOKEN}}"
          api_url: "${{GITHUB_API}}/api/v3"
          allow_private: true
"""
    app_env(route, **settings(gh, app_key))
    assert deliver("model_registered", MODEL).statuses() == ["done"]
    (sent,) = gh.dispatches
    assert sent.kind == "workflow_dispatch" and sent.token == "github_pat_fine_grained"
    assert sent.body == {"ref": "main", "inputs": {"model": "churn-classifier", "version": "7", "ledger_key": KEY}}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (  # the App is not installed where the route says
            lambda gh: gh.apps[APP_ID].installations.clear(),
            f"no installation {INSTALLATION}: install it on the account that owns {REPOSITORY}",
        ),
        (  # the installation does not include the repository
            lambda gh: gh.apps[APP_ID].installations.update({INSTALLATION: set()}),
            f"is the GitHub App installed on contoso with access to {REPOSITORY}?",
        ),
        (  # GitHub no longer knows the App's key: the JWT does not verify
            lambda gh: gh.apps[APP_ID].__setattr__("public_key_pem", _other_public_key()),
            "GitHub refused the App's JWT: check app.id and that private_key is a current key of the App",
        ),
    ],
)
def test_permanent_failures_say_what_to_fix(app_env, gh, app_key, deliver, change, expected) -> None:
    app_env(dispatch_route(), **settings(gh, app_key))
    change(gh)
    delivery = deliver("model_registered", MODEL)
    assert delivery.statuses() == ["failed"] and delivery.reports[0].attempts == 1
    failed = only_record(MODEL["id"])
    assert failed.status == "failed" and expected in failed.detail, failed.detail
    assert gh.dispatches == []


def test_an_unknown_workflow_input_is_a_422_naming_the_inputs(app_env, gh, app_key, deliver) -> None:
    gh.repositories[REPOSITORY]["deploy.yml"] = Workflow({"model": True})  # declares no ledger_key input
    route = dispatch_route(auth="token").replace(
        "dispatch:\n            event_type: model-registered\n            client_payload:",
        "workflow:\n            file: deploy.yml\n            ref: main\n            inputs:",
    )
    app_env(route, **settings(gh, app_key))
    delivery = deliver("model_registered", MODEL)
    detail = delivery.reports[0].detail
    assert delivery.statuses() == ["failed"] and "-> 422: Unexpected inputs provided" in detail
    assert "declare workflow_dispatch inputs model, version, ledger_key" in detail


def test_a_bad_token_is_a_401_to_renew_and_no_secret_reaches_the_ledger(app_env, gh, app_key, deliver) -> None:
    app_env(dispatch_route(auth="token"), **settings(gh, app_key, GITHUB_TOKEN="github_pat_revoked"))
    delivery = deliver("model_registered", MODEL)
    failed = only_record(MODEL["id"])
    assert failed.status == "failed" and "-> 401: Bad credentials" in failed.detail and "renew it" in failed.detail
    stored = repr(failed)
    assert "github_pat_revoked" not in stored and "PRIVATE KEY" not in stored
    assert "github_pat_revoked" not in repr(delivery.reports)


def test_the_destination_guard_applies_without_allow_private(app_env, gh, app_key, deliver) -> None:
    app_env(
        dispatch_route(auth="token").replace("allow_private: true", "allow_private: false"), **settings(gh, app_key)
    )
    delivery = deliver("model_registered", MODEL)
    assert delivery.statuses() == ["failed"] and "non-public address" in delivery.reports[0].detail
    assert gh.requests == []


def _other_public_key() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def test_an_installation_token_about_to_expire_is_exchanged_again(app_env, gh, app_key, deliver) -> None:
    app_env(dispatch_route(), **settings(gh, app_key))
    assert deliver("model_registered", MODEL).statuses() == ["done"]
    ((key, (token, _)),) = github._tokens.items()
    github._tokens[key] = (token, time.time() + github.TOKEN_REFRESH_BEFORE - 1)
    assert deliver("model_registered", OTHER_MODEL).statuses() == ["done"]
    assert len(gh.sent("POST", "/access_tokens")) == 2
    assert gh.dispatches[1].token != token
