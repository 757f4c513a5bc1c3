"""Clients for the app's storage account, built from the same settings the Functions host uses.

`AzureWebJobsStorage` (or the prefix named by LEDGER_CONNECTION) is either a connection string
(Azurite locally: `UseDevelopmentStorage=true`) or, in Azure, identity-based settings:
`<prefix>__tableServiceUri` / `__blobServiceUri` (or `__accountName`) with `__clientId` for a
user-assigned managed identity. Clients are cached per worker.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shared.settings import Settings

if TYPE_CHECKING:
    from azure.data.tables import TableServiceClient
    from azure.storage.blob import BlobServiceClient

logger = logging.getLogger("aml_events.platform.storage")

_clients: dict[tuple[str, str], Any] = {}
_lock = threading.Lock()

# An invocation has ~20 s before Event Grid gives up on it (INVOCATION_BUDGET_SECONDS); the SDK
# defaults (300 s timeouts, 10 retries from 0.8 s) would let one storage hiccup outlast it.
CLIENT_OPTIONS: dict[str, Any] = {
    "connection_timeout": 3,
    "read_timeout": 5,
    "retry_total": 3,
    "retry_backoff_factor": 0.2,
    "retry_backoff_max": 2,
}


class StorageNotConfigured(RuntimeError):
    pass


def _service_uri(settings: Settings, service: str) -> tuple[str | None, str | None]:
    """(connection string, endpoint URI): exactly one is set."""
    prefix = settings.storage_connection
    if settings.storage_connection_string:
        return settings.storage_connection_string, None
    uri = {"table": settings.table_service_uri, "blob": settings.blob_service_uri}[service]
    account = settings.storage_account_name
    if not uri and account:
        uri = f"https://{account}.{service}.core.windows.net"
    if not uri:
        raise StorageNotConfigured(
            f"storage is not configured: set {prefix} to a connection string (UseDevelopmentStorage=true for "
            f"Azurite) or {prefix}__{service}ServiceUri / {prefix}__accountName for a managed identity"
        )
    return None, uri


def _credential(settings: Settings) -> Any:
    from shared.platform.identity import app_credential

    return app_credential(settings.storage_client_id or settings.client_id or None)


def _cached_client(
    settings: Settings, service: str, client_class: Any, transport: Callable[[], Any] | None = None
) -> Any:
    connection_string, uri = _service_uri(settings, service)
    key = (service, connection_string or uri or "")
    with _lock:
        if key not in _clients:
            chosen = transport() if transport else None
            options = {**CLIENT_OPTIONS, **({"transport": chosen} if chosen else {})}
            _clients[key] = (
                client_class.from_connection_string(connection_string, **options)
                if connection_string
                else client_class(uri, credential=_credential(settings), **options)
            )
        return _clients[key]


def table_service(settings: Settings) -> TableServiceClient:
    from azure.data.tables import TableServiceClient

    return _cached_client(settings, "table", TableServiceClient, _table_transport)


def _table_transport() -> Any:
    """httpx for Table Storage (shared/platform/table_transport.py), or None: the SDK's own transport, should a
    future azure-core move the class that transport builds on (a private one). An upgrade may cost
    speed, never events."""
    try:
        from shared.platform.table_transport import TableTransport
    except ImportError as error:
        logger.warning("Table Storage falls back to the SDK's default HTTP transport: %s", error)
        return None

    return TableTransport(connection_timeout=CLIENT_OPTIONS["connection_timeout"],
                          read_timeout=CLIENT_OPTIONS["read_timeout"])  # fmt: skip


def blob_service(settings: Settings) -> BlobServiceClient:
    from azure.storage.blob import BlobServiceClient

    return _cached_client(settings, "blob", BlobServiceClient)


_tables: dict[tuple[str, str], Any] = {}


def existing_table(settings: Settings, name: str) -> Any:
    """A TableClient for `name`, the table created on first use (once per worker and table)."""
    from azure.core.exceptions import ResourceExistsError

    connection_string, uri = _service_uri(settings, "table")
    key = (connection_string or uri or "", name)
    with _lock:
        client = _tables.get(key)
    if client is None:
        client = table_service(settings).get_table_client(name)
        try:
            client.create_table()
        except ResourceExistsError:
            pass
        with _lock:
            _tables[key] = client
    return client


def insert_entity(table: Any, entity: dict[str, Any]) -> dict[str, Any]:
    """`table.create_entity(entity)`, failing with the storage error itself. azure-data-tables 12.7
    decodes every failure of create_entity as a service answer, so one raised before any answer (no
    token: the managed-identity endpoint is unreachable) escapes as AttributeError; the error it was
    decoding is the one that says what went wrong, and the one callers catch (AzureError)."""
    from azure.core.exceptions import AzureError

    try:
        return table.create_entity(entity)
    except AttributeError as error:
        if isinstance(error.__context__, AzureError):
            raise error.__context__ from None
        raise
