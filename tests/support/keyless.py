"""Storage as infra/ deploys it, on this machine: no keys, only bearer tokens of a managed identity.

Azurite serves HTTPS with a self-signed certificate and checks OAuth tokens (`--oauth basic`); the
local identity endpoint (tests/support/identity_endpoint.py) issues them. `app_settings` are what the
platform and infra/ set for the app, plus the CA bundle that makes the app trust Azurite's certificate.
"""

from __future__ import annotations

from dataclasses import dataclass

from scripts import azurite as azurite_tool
from tests.support.certificate import self_signed_certificate
from tests.support.https_fake import ca_bundle
from tests.support.identity_endpoint import IdentityEndpoint

CLIENT_ID = "5e29463d-71da-4fe0-8e69-999b57db23b0"  # the app's user-assigned identity (infra/: identityClientId)


@dataclass
class KeylessStorage:
    azurite: azurite_tool.Azurite
    identity: IdentityEndpoint
    ca_bundle: str

    @classmethod
    def start(cls) -> KeylessStorage:
        certificate = self_signed_certificate()
        azurite = azurite_tool.start(tls=certificate, oauth=True)
        return cls(azurite, IdentityEndpoint(), ca_bundle(certificate[0]))

    def app_settings(self, client_id: str = CLIENT_ID) -> dict[str, str]:
        """Identity-based `AzureWebJobsStorage__*` for the user-assigned identity `client_id` (as in
        infra/app/function-app.bicep), the identity endpoint's settings, and the CA bundle for both
        HTTP stacks: httpx (the Table transport, shared/platform/tls.py) reads SSL_CERT_FILE, requests (the Blob
        client) REQUESTS_CA_BUNDLE."""
        return {
            "AzureWebJobsStorage__credential": "managedidentity",
            "AzureWebJobsStorage__clientId": client_id,
            "AzureWebJobsStorage__tableServiceUri": self.azurite.service_uri("table"),
            "AzureWebJobsStorage__blobServiceUri": self.azurite.service_uri("blob"),
            **self.identity.settings(),
            "SSL_CERT_FILE": self.ca_bundle,
            "REQUESTS_CA_BUNDLE": self.ca_bundle,
        }

    def close(self) -> None:
        self.azurite.stop()
        self.identity.close()

