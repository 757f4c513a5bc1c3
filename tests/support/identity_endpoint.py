"""A local managed-identity endpoint: what App Service and Azure Functions run next to the app, for the
REAL azure-identity `ManagedIdentityCredential` (through `DefaultAzureCredential`).

The contract (App Service, api-version 2019-08-01), as azure-identity 1.27 / msal 1.39 speak it when
`IDENTITY_ENDPOINT` and `IDENTITY_HEADER` are set:
  GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=<resource>[&client_id=<user-assigned identity>]
      X-IDENTITY-HEADER: {IDENTITY_HEADER}
  200 {"access_token", "expires_on" (epoch seconds, a string), "resource", "token_type": "Bearer", "client_id"}
  4xx {"statusCode", "message"}
The tokens are unsigned JWTs that Azurite's `--oauth basic` accepts: `iss` an Entra ID issuer, `aud`
the resource asked for (so a token for the wrong resource is refused, as Azure Storage would refuse it),
`iat`/`nbf`/`exp` a one-hour lifetime. Every request is recorded for assertions.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.loopback import JsonHandler, LoopbackServer

API_VERSION = "2019-08-01"
TENANT = "72f988bf-0000-4000-8000-000000000000"
ISSUER = f"https://sts.windows.net/{TENANT}/"  # Azurite checks the issuer's prefix
SYSTEM_ASSIGNED = "00000000-0000-4000-8000-5a5a5a5a5a5a"  # the client id of "the app's own identity"
LIFETIME_SECONDS = 3600


@dataclass(frozen=True)
class TokenRequest:
    resource: str
    client_id: str | None  # None: the system-assigned identity
    api_version: str
    secret_matched: bool  # X-IDENTITY-HEADER was the endpoint's secret


def unsigned_jwt(audience: str, client_id: str, lifetime: int = LIFETIME_SECONDS) -> str:
    """An Entra-ID-shaped access token, not signed: Azurite's basic check reads it without verifying."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    issued = int(time.time())
    claims = {"aud": audience, "iss": ISSUER, "iat": issued, "nbf": issued, "exp": issued + lifetime,
              "tid": TENANT, "appid": client_id, "oid": str(uuid.uuid5(uuid.NAMESPACE_URL, client_id))}  # fmt: skip
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


class IdentityEndpoint(LoopbackServer[int]):
    """Scripted replies (`script(500)`) are HTTP statuses answered instead of the next tokens."""

    def __init__(self) -> None:
        super().__init__()
        self.secret = uuid.uuid4().hex
        self.requests: list[TokenRequest] = []
        endpoint = self

        class Handler(JsonHandler):
            def do_GET(self) -> None:
                self.send_json(*endpoint._answer(self.path, self.headers.get("X-IDENTITY-HEADER")))

        self.serve(Handler)

    def settings(self) -> dict[str, str]:
        """The app settings the platform sets for an app with a managed identity."""
        return {"IDENTITY_ENDPOINT": f"{self.url}/msi/token", "IDENTITY_HEADER": self.secret}

    def asked(self) -> list[TokenRequest]:
        with self._lock:
            return list(self.requests)

    def forget(self) -> None:
        """Clear the requests recorded and the replies scripted so far (a new test)."""
        with self._lock:
            self.requests.clear()
            self.replies.clear()

    def _answer(self, target: str, secret: str | None) -> tuple[int, dict[str, Any]]:
        query = {name: values[0] for name, values in parse_qs(urlsplit(target).query).items()}
        request = TokenRequest(query.get("resource", ""), query.get("client_id"), query.get("api-version", ""),
                               secret == self.secret)  # fmt: skip
        with self._lock:
            self.requests.append(request)
            scripted = self.replies.popleft() if self.replies else None
        if scripted:
            return scripted, {"statusCode": scripted, "message": "scripted failure of the identity endpoint"}
        if not request.secret_matched:
            return 401, {"statusCode": 401, "message": "X-IDENTITY-HEADER is missing or wrong"}
        if request.api_version != API_VERSION or not request.resource:
            return 400, {"statusCode": 400, "message": f"expected api-version={API_VERSION} and a resource"}
        client_id = request.client_id or SYSTEM_ASSIGNED
        token = unsigned_jwt(request.resource, client_id)
        expires_on = int(time.time()) + LIFETIME_SECONDS
        return 200, {"access_token": token, "expires_on": str(expires_on), "resource": request.resource,
                     "token_type": "Bearer", "client_id": client_id}  # fmt: skip
