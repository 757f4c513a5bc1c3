"""Storage clients are built once per worker; with a managed identity, Table and Blob share one
credential (one token cache, one token request to the identity endpoint instead of one per client)."""

from __future__ import annotations

import uuid

from shared.platform.storage import blob_service, table_service
from shared.settings import Settings


def identity_settings(client_id: str) -> Settings:
    account = f"acct{uuid.uuid4().hex[:12]}"  # clients are cached per endpoint: a fresh one per test
    return Settings.from_environ({
        "AzureWebJobsStorage__tableServiceUri": f"https://{account}.table.core.windows.net",
        "AzureWebJobsStorage__blobServiceUri": f"https://{account}.blob.core.windows.net",
        "AzureWebJobsStorage__clientId": client_id,
    })  # fmt: skip


def test_clients_are_built_once_per_worker() -> None:
    settings = identity_settings("11111111-0000-0000-0000-000000000001")
    assert table_service(settings) is table_service(settings)
    assert blob_service(settings) is blob_service(settings)


def test_table_and_blob_share_one_credential_per_identity() -> None:
    settings = identity_settings("11111111-0000-0000-0000-000000000002")
    credential = table_service(settings).credential
    assert blob_service(settings).credential is credential
    other = identity_settings("11111111-0000-0000-0000-000000000003")
    assert table_service(other).credential is not credential  # another identity, another credential


def test_email_and_azure_ml_use_the_storage_credential_of_the_same_identity() -> None:
    from handlers.azureml.client import _default_credential
    from handlers.email.acs import AcsSettings, email_client

    client_id = "11111111-0000-0000-0000-000000000004"
    credential = table_service(identity_settings(client_id)).credential
    acs = AcsSettings.of(
        Settings.from_environ({"ACS_ENDPOINT": "https://contoso.communication.azure.com", "AZURE_CLIENT_ID": client_id})
    )
    assert acs is not None
    assert email_client(acs)._config.authentication_policy._credential is credential
    assert _default_credential(Settings.from_environ({"AZURE_CLIENT_ID": client_id})) is credential
