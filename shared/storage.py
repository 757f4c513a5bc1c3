"""Clients for the app's storage account, built from the same settings the Functions host uses.

`AzureWebJobsStorage` (or the prefix named by LEDGER_CONNECTION) is either a connection string
(Azurite locally: `UseDevelopmentStorage=true`) or, in Azure, identity-based settings:
`<prefix>__tableServiceUri` / `__blobServiceUri` (or `__accountName`) with `__clientId` for a
user-assigned managed identity. Clients are cached per worker.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from shared.settings import Settings

if TYPE_CHECKING:
    from azure.data.tables import TableServiceClient
    from azure.storage.blob import BlobServiceClient

_clients: dict[tuple[str, str], Any] = {}
_lock = threading.Lock()


class StorageNotConfigured(RuntimeError):
    pass


def _service_uri(settings: Settings, service: str) -> tuple[str | None, str | None]:
    """(connection string, endpoint URI): exactly one is set."""
    env, prefix = settings.environ, settings.storage_connection
    connection_string = env.get(prefix)
    if connection_string:
        return connection_string, None
    uri = env.get(f"{prefix}__{service}ServiceUri")
    account = env.get(f"{prefix}__accountName")
    if not uri and account:
        uri = f"https://{account}.{service}.core.windows.net"
    if not uri:
        raise StorageNotConfigured(
            f"storage is not configured: set {prefix} to a connection string (UseDevelopmentStorage=true for "
            f"Azurite) or {prefix}__{service}ServiceUri / {prefix}__accountName for a managed identity"
        )
    return None, uri


def _credential(settings: Settings) -> Any:
    from azure.identity import DefaultAzureCredential

    client_id = settings.environ.get(f"{settings.storage_connection}__clientId") or settings.environ.get(
        "AZURE_CLIENT_ID"
    )
    return DefaultAzureCredential(managed_identity_client_id=client_id)


def _cached_client(settings: Settings, service: str, client_class: Any) -> Any:
    connection_string, uri = _service_uri(settings, service)
    key = (service, connection_string or uri or "")
    with _lock:
        if key not in _clients:
            _clients[key] = (
                client_class.from_connection_string(connection_string)
                if connection_string
                else client_class(uri, credential=_credential(settings))
            )
        return _clients[key]


def table_service(settings: Settings) -> TableServiceClient:
    from azure.data.tables import TableServiceClient

    return _cached_client(settings, "table", TableServiceClient)


def blob_service(settings: Settings) -> BlobServiceClient:
    from azure.storage.blob import BlobServiceClient

    return _cached_client(settings, "blob", BlobServiceClient)
