"""Sending through Azure Communication Services Email (`azure-communication-email`).

The SDK is imported on first send, not at module import (cold start). One client per worker and
configuration. The SDK's own retries are off: a 429 or 503 surfaces here as a retryable
ActionFailed with the service's Retry-After, so the engine waits within the invocation budget and
the ledger records every attempt. Polling is bounded by the time the action has left.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from handlers.common.http import RETRYABLE_STATUS, retry_after_seconds
from shared.actions import ActionFailed
from shared.settings import Settings

if TYPE_CHECKING:
    from azure.communication.email import EmailClient

# Seconds between status polls when the service sends no Retry-After (the SDK's default is 30).
POLL_INTERVAL_SECONDS = 1.0
# Time kept back from the action's budget for the poll answer to arrive.
POLL_RESERVE_SECONDS = 0.5
HOW_TO_GRANT = (
    "the app's identity needs a role on the Communication Services resource "
    "(Contributor, or a custom role with the email send permissions; see docs/actions.md, Email)"
)


@dataclass(frozen=True)
class AcsSettings:
    """Where and how to reach ACS, from app settings. ACS_CONNECTION_STRING (key auth, https) wins;
    else ACS_ENDPOINT with the app's managed identity (shared/platform/identity.py; AZURE_CLIENT_ID picks a
    user-assigned identity), or with ACS_ACCESS_KEY for local testing against a fake service."""

    endpoint: str = ""
    connection_string: str = ""
    access_key: str = ""
    client_id: str = ""  # the user-assigned managed identity (AZURE_CLIENT_ID); "": the system-assigned one

    @classmethod
    def of(cls, settings: Settings) -> AcsSettings | None:
        """The app's ACS settings; None when email goes to the outbox."""
        acs = cls(settings.acs_endpoint, settings.acs_connection_string, settings.acs_access_key, settings.client_id)
        return acs if acs.endpoint or acs.connection_string else None

    @property
    def auth(self) -> str:
        return (
            "connection string" if self.connection_string else "access key" if self.access_key else "managed identity"
        )


_clients: dict[AcsSettings, EmailClient] = {}
_clients_lock = threading.Lock()


def email_client(settings: AcsSettings) -> EmailClient:
    with _clients_lock:
        client = _clients.get(settings)
        if client is None:
            client = _clients[settings] = _build_client(settings)
        return client


def _build_client(settings: AcsSettings) -> EmailClient:
    from azure.communication.email import EmailClient

    options: dict[str, Any] = {"retry_total": 0}  # the engine retries, within the budget, recorded
    if settings.connection_string:
        return EmailClient.from_connection_string(settings.connection_string, **options)
    if settings.access_key:
        from azure.core.credentials import AzureKeyCredential

        return EmailClient(settings.endpoint, AzureKeyCredential(settings.access_key), **options)
    from shared.platform.identity import app_credential

    return EmailClient(settings.endpoint, app_credential(settings.client_id or None), **options)


@dataclass(frozen=True)
class SendResult:
    operation_id: str
    status: str  # "Succeeded", or "Running" when the budget ended before the service confirmed


def send(settings: AcsSettings, message: Mapping[str, Any], operation_id: str, remaining: float) -> SendResult:
    """Send once; raises ActionFailed (retryable for throttling, outages and timeouts)."""
    from azure.core.exceptions import HttpResponseError, ServiceRequestError

    timeout = max(0.1, remaining)
    try:
        poller = email_client(settings).begin_send(
            message,
            operation_id=operation_id,
            polling_interval=POLL_INTERVAL_SECONDS,
            connection_timeout=timeout,
            read_timeout=timeout,
        )
        poller.wait(timeout=max(0.0, remaining - POLL_RESERVE_SECONDS))
        if not poller.done():
            # Accepted (202) but not confirmed in time: the service queues it; resending could duplicate.
            return SendResult(operation_id, "Running")
        result = poller.result()
    except HttpResponseError as error:
        raise _failure(error, settings) from None
    except ServiceRequestError as error:
        raise ActionFailed(f"ACS unreachable: {error.message}", retryable=True) from None
    return SendResult(str(result.get("id") or operation_id), str(result.get("status") or "Succeeded"))


def _failure(error: Any, settings: AcsSettings) -> ActionFailed:
    status = getattr(error, "status_code", None)
    response = getattr(error, "response", None)
    if status in RETRYABLE_STATUS:  # 429: the send limits (a few a minute on Azure-managed domains)
        what = "throttled the send" if status == 429 else "answered"
        return ActionFailed(
            f"ACS {what} ({status}): {_reason(error)}",
            retryable=True,
            retry_after=retry_after_seconds(_lower(response.headers)) if response is not None else None,
        )
    if status in (401, 403):
        fix = {
            "managed identity": HOW_TO_GRANT,
            "connection string": "check the accesskey in ACS_CONNECTION_STRING",
            "access key": "check ACS_ACCESS_KEY",
        }[settings.auth]
        return ActionFailed(f"ACS refused the {settings.auth} ({status}): {_reason(error)}; {fix}")
    if status is not None and 400 <= status < 500:
        return ActionFailed(f"ACS rejected the email ({status}): {_reason(error)}")
    # The operation itself ended Failed or Canceled (e.g. a recipient on the suppression list).
    return ActionFailed(f"ACS did not send the email: {_reason(error)}")


def _reason(error: Any) -> str:
    detail = getattr(error, "error", None)
    code, message = getattr(detail, "code", None), getattr(detail, "message", None)
    if code or message:
        return f"{code or 'error'}: {message or ''}".strip()
    return str(getattr(error, "reason", None) or getattr(error, "message", None) or error).splitlines()[0]


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}
