"""The app's identity: one credential per managed identity and worker, shared by every client (storage,
email, Azure ML) so that they share one token cache.

Where the platform runs a managed-identity endpoint beside the app (App Service and Azure Functions set
IDENTITY_ENDPOINT and IDENTITY_HEADER), a token is one local GET: api-version 2019-08-01, the request
msal makes for azure-identity's ManagedIdentityCredential. Importing azure-identity (msal, requests,
cryptography) costs a fresh worker ~100 ms, about a third of its first event, so there the app asks the
endpoint itself (`AppServiceIdentity`). Elsewhere (a developer's machine with the Azure CLI, a service
principal in the environment) it uses DefaultAzureCredential.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from typing import Any

import httpx
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError

from shared.platform.tls import tls_context

API_VERSION = "2019-08-01"
REFRESH_BEFORE_SECONDS = 300  # a cached token this close to its expiry is fetched again
# Bounded like the storage calls: a token request must not outlast a 20 s invocation. One retry after a
# refused connection or a 5xx; none after an answer that did not come in time.
CONNECT_TIMEOUT, READ_TIMEOUT, RETRY_PAUSE = 2.0, 4.0, 0.2


# DefaultAzureCredential's requests to the identity endpoint, bounded too: with the SDK defaults (300 s
# read timeout, 10 retries) a hung endpoint held a delivery for many minutes.
DEFAULT_CREDENTIAL_OPTIONS: dict[str, Any] = {
    "connection_timeout": CONNECT_TIMEOUT,
    "read_timeout": READ_TIMEOUT,
    "retry_total": 1,
    "retry_read": 0,
    "retry_backoff_factor": RETRY_PAUSE,
    "retry_backoff_max": 1,
}
# Where these are set, DefaultAzureCredential would use them before a managed identity.
_ENVIRONMENT_CREDENTIALS = ("AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_USERNAME",
                            "AZURE_FEDERATED_TOKEN_FILE")  # fmt: skip


@functools.cache
def app_credential(client_id: str | None) -> Any:
    """The credential of the managed identity `client_id` (None: the system-assigned one) for this worker.
    A token request that fails or times out raises ClientAuthenticationError within ~8 s at most."""
    platform = _platform_identity(client_id)
    if platform is not None:
        return platform
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(managed_identity_client_id=client_id, **DEFAULT_CREDENTIAL_OPTIONS)


def _platform_identity(client_id: str | None) -> AppServiceIdentity | None:
    """App Service's / Azure Functions' identity endpoint; None where DefaultAzureCredential would not pick
    the managed identity first."""
    endpoint, secret = os.environ.get("IDENTITY_ENDPOINT"), os.environ.get("IDENTITY_HEADER")
    if not (endpoint and secret) or any(os.environ.get(name) for name in _ENVIRONMENT_CREDENTIALS):
        return None
    return AppServiceIdentity(endpoint, secret, client_id)


class AppServiceIdentity:
    """An azure-core TokenCredential: one cached token per resource, shared by every client of the worker."""

    def __init__(self, endpoint: str, secret: str, client_id: str | None) -> None:
        self._endpoint, self._secret, self._client_id = endpoint, secret, client_id
        self._tokens: dict[str, AccessToken] = {}
        self._lock = threading.Lock()
        self._http: httpx.Client | None = None

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        if len(scopes) != 1:
            raise ValueError(f"a managed identity token is for exactly one scope, not {len(scopes)}")
        resource = scopes[0].removesuffix("/.default")
        with self._lock:  # concurrent first calls wait for one request
            token = self._tokens.get(resource)
            if token is None or token.expires_on - time.time() < REFRESH_BEFORE_SECONDS:
                token = self._tokens[resource] = self._fetch(resource)
            return token

    def _fetch(self, resource: str) -> AccessToken:
        params = {"api-version": API_VERSION, "resource": resource}
        if self._client_id:
            params["client_id"] = self._client_id
        if self._http is None:
            self._http = httpx.Client(timeout=httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT),
                                      verify=tls_context())  # fmt: skip
        problem = ""
        for last_try in (False, True):
            try:
                response = self._http.get(self._endpoint, params=params, headers={"X-IDENTITY-HEADER": self._secret})
            except httpx.ReadTimeout:
                problem = f"no answer within {READ_TIMEOUT:g} s"
                break
            except httpx.TransportError as error:
                problem = f"{type(error).__name__}: {error}"
            else:
                if response.status_code == 200:
                    return _token(response, resource)
                problem = f"{response.status_code} {response.text[:300]}"
                if response.status_code < 500:
                    break
            if not last_try:
                time.sleep(RETRY_PAUSE)
        raise ClientAuthenticationError(
            message=f"managed identity failed to retrieve a token for {resource} from IDENTITY_ENDPOINT: {problem}"
        )


def _token(response: httpx.Response, resource: str) -> AccessToken:
    try:
        payload = response.json()
        return AccessToken(payload["access_token"], int(payload["expires_on"]))
    except (ValueError, KeyError, TypeError) as error:  # never echo the answer: it may hold a token
        raise ClientAuthenticationError(
            message=f"managed identity answered IDENTITY_ENDPOINT for {resource} without a readable token "
            f"({type(error).__name__})"
        ) from None
