"""Storage as deployed: no keys. The app reaches its ledger tables and rejected-payload blobs with
bearer tokens of its user-assigned managed identity, as infra/ configures it
(`AzureWebJobsStorage__tableServiceUri` / `__blobServiceUri` / `__clientId`, shared keys disabled).

At the wire, nothing mocked: the real azure-identity fetches tokens from a local managed-identity
endpoint (the App Service protocol, tests/support/identity_endpoint.py), and the real Table and Blob
clients send them over HTTPS to an Azurite that checks them (`--oauth basic`: lifetime, issuer,
audience) and accepts nothing else (tests/support/keyless.py).
"""

from __future__ import annotations

import functools
import socket
import ssl
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from shared.platform import identity, storage, tls
from shared.settings import Settings
from shared.worker import current_engine
from tests.support.events import load_event
from tests.support.fresh_worker import NEVER_HERE, PLAIN_ROUTES, first_event
from tests.support.identity_endpoint import API_VERSION, TokenRequest, unsigned_jwt
from tests.support.keyless import CLIENT_ID, KeylessStorage

STORAGE_RESOURCE = "https://storage.azure.com"  # the audience Azure Storage accepts for every account
FAILED_RUN = load_event("eventgrid/run_status_changed_failed.json")

ROUTES = """
routes:
  - name: failed-runs
    events: [RunStatusChanged]
    actions:
      - log: {}
      - webhook: {url: "${HOOK_URL}/alerts", allow_private: true, retry: {attempts: 1}}
"""


@pytest.fixture(scope="module")
def keyless() -> Iterator[KeylessStorage]:
    running = KeylessStorage.start()
    yield running
    running.close()


@pytest.fixture(params=["platform identity", "azure-identity"])
def keyless_app(
    request: pytest.FixtureRequest,
    app_env: Callable[..., Path],
    keyless: KeylessStorage,
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., Path]:
    """`app_env`, with storage settings as infra/ sets them instead of Azurite's connection string,
    in a worker that has built no storage client, credential or TLS context yet (all restored after).
    Tokens come from the app's own App Service identity client (shared/platform/identity.py), or from
    azure-identity's DefaultAzureCredential, which the app uses where that client does not apply."""
    from handlers.common import http

    monkeypatch.delenv("AzureWebJobsStorage")
    for name, value in keyless.app_settings().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(storage, "_clients", {})
    monkeypatch.setattr(storage, "_tables", {})
    monkeypatch.setattr(identity, "app_credential", functools.cache(identity.app_credential.__wrapped__))
    monkeypatch.setattr(tls, "_context", None)  # made from SSL_CERT_FILE when first used
    monkeypatch.setattr(http, "_client", None)
    keyless.identity.forget()
    if request.param == "azure-identity":
        monkeypatch.setattr(identity, "_platform_identity", lambda client_id: None)
    return app_env


def test_events_are_acted_on_and_recorded_with_the_identity_s_storage_token(
    keyless_app, keyless, receiver, deliver
) -> None:
    keyless_app(ROUTES, HOOK_URL=receiver.url)
    ledger = current_engine().ledger

    first = deliver("run_events", FAILED_RUN)
    assert first.error is None and first.statuses() == ["done", "done"]
    records = {record.position: record for record in ledger.records(event_id=FAILED_RUN["id"])}
    assert (records[0].kind, records[0].status) == ("log", "done")
    assert (records[1].kind, records[1].status, records[1].attempts) == ("webhook", "done", 1)

    again = deliver("run_events", FAILED_RUN)
    assert again.statuses() == ["skipped", "skipped"]
    another = deliver("run_events", FAILED_RUN | {"id": f"keyless-{uuid.uuid4()}"})
    assert another.statuses() == ["done", "done"]
    assert len(receiver.requests) == 2

    # Too large for a table property: the whole payload goes to the `rejected` blob container.
    bad_id = f"keyless-bad-{uuid.uuid4()}"
    large = FAILED_RUN | {"id": bad_id, "topic": "not-a-workspace",
                          "data": FAILED_RUN["data"] | {"runTags": {"notes": "x" * 40_000}}}  # fmt: skip
    rejected = deliver("run_events", large)
    assert rejected.error is None and rejected.statuses() == ["rejected"]
    (rejection,) = ledger.rejections(event_id=bad_id)
    assert rejection.payload_blob and rejection.reason.startswith("topic: ")
    assert "x" * 40_000 in ledger.rejected_payload(rejection).decode()

    # One token, for Azure Storage and the configured identity, served every event and both services.
    assert keyless.identity.asked() == [TokenRequest(STORAGE_RESOURCE, CLIENT_ID, API_VERSION, secret_matched=True)]


def test_azurite_accepts_only_a_storage_token(keyless: KeylessStorage) -> None:
    """What makes the test above able to fail: a request without a token, or with a token for another
    audience (what the app would hold had it asked for the wrong scope), is refused."""
    tables = f"{keyless.azurite.service_uri('table')}/Tables"
    headers = {"x-ms-version": "2019-02-02", "Accept": "application/json;odata=nometadata"}
    trusted = ssl.create_default_context(cafile=keyless.ca_bundle)

    def list_tables(token: str | None) -> httpx.Response:
        authorization = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.get(tables, headers=headers | authorization, verify=trusted)

    assert list_tables(None).status_code == 403
    refused = list_tables(unsigned_jwt("https://management.azure.com", CLIENT_ID))
    assert refused.status_code == 403 and "AuthenticationFailed" in refused.text
    assert list_tables(unsigned_jwt(STORAGE_RESOURCE, CLIENT_ID)).status_code == 200


def _closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}/msi/token"


@pytest.mark.parametrize(
    "outage", ["refusing connections", "answering 500", pytest.param("never answering", marks=pytest.mark.slow)]
)
def test_without_a_token_the_delivery_fails_clearly_within_its_budget_and_no_action_runs(
    outage, keyless_app, keyless, receiver, deliver, silent_server
) -> None:
    endpoint = {"refusing connections": _closed_port_url(), "never answering": f"{silent_server}/msi/token"}
    elsewhere = {"IDENTITY_ENDPOINT": endpoint[outage]} if outage in endpoint else {}
    keyless_app(ROUTES, HOOK_URL=receiver.url, **elsewhere)
    if outage == "answering 500":
        keyless.identity.script(*[500] * 10)
    started = time.monotonic()
    delivery = deliver("run_events", FAILED_RUN | {"id": f"keyless-outage-{uuid.uuid4()}"})
    elapsed = time.monotonic() - started
    assert delivery.error is not None
    assert "ledger storage unavailable during claim" in str(delivery.error)
    assert "failed to retrieve a token" in str(delivery.error)
    assert receiver.requests == []
    budget = Settings.from_environ({}).invocation_budget_seconds  # what a deployed app has; Event Grid waits 30 s
    assert elapsed < budget, f"the identity endpoint {outage} held the delivery for {elapsed:.1f} s"


def test_a_first_event_with_keyless_storage_takes_its_token_without_azure_identity(
    keyless: KeylessStorage, tmp_path: Path
) -> None:
    keyless.identity.forget()
    seen = first_event(keyless.app_settings(), tmp_path, PLAIN_ROUTES)
    assert seen["outcomes"] == ["action done"]
    assert not set(seen["modules"]) & (NEVER_HERE | {"msal", "cryptography"})
    assert [(r.resource, r.client_id, r.secret_matched) for r in keyless.identity.asked()] == [
        (STORAGE_RESOURCE, CLIENT_ID, True)
    ]


def test_the_platform_identity_reuses_a_token_until_near_its_expiry_and_names_a_refusal(
    keyless: KeylessStorage,
) -> None:
    from azure.core.exceptions import ClientAuthenticationError

    from shared.platform.identity import REFRESH_BEFORE_SECONDS, AppServiceIdentity

    keyless.identity.forget()
    settings = keyless.identity.settings()
    credential = AppServiceIdentity(settings["IDENTITY_ENDPOINT"], settings["IDENTITY_HEADER"], CLIENT_ID)
    scope = f"{STORAGE_RESOURCE}/.default"
    first = credential.get_token(scope)
    assert credential.get_token(scope) == first and len(keyless.identity.asked()) == 1
    credential._tokens[STORAGE_RESOURCE] = first._replace(expires_on=int(time.time()) + REFRESH_BEFORE_SECONDS - 1)
    assert credential.get_token(scope).token != "" and len(keyless.identity.asked()) == 2  # fetched again

    wrong = AppServiceIdentity(settings["IDENTITY_ENDPOINT"], "not-the-secret", CLIENT_ID)
    with pytest.raises(ClientAuthenticationError) as refused:
        wrong.get_token(scope)
    assert "failed to retrieve a token for https://storage.azure.com" in str(refused.value)
    assert "401" in str(refused.value) and "not-the-secret" not in str(refused.value)
    assert len(keyless.identity.asked()) == 3  # a 4xx is not retried
    with pytest.raises(ValueError, match="exactly one scope"):
        credential.get_token(scope, "https://vault.azure.net/.default")
