"""Calls to a service's JSON REST API (GitHub, Azure DevOps): the worker's shared client and destination
guard, but the answer comes back whatever its status, because each service says in its own way which
failures are worth another try and what the person reading the ledger should fix."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from handlers.common import http
from shared.actions import ActionFailed


def send(url: str, body: Any, headers: Mapping[str, str], *, timeout: float, allow_private: bool) -> httpx.Response:
    """POST `body` as JSON; a connection that fails or an answer that does not come in time is retryable."""
    if not allow_private:
        http.guard_destination(url)
    target = http.safe_target(url)
    try:
        return http.client().post(
            url,
            content=http.json_bytes(body),
            headers={"Content-Type": "application/json", **headers},
            timeout=max(timeout, 0.001),
        )
    except httpx.TimeoutException:
        raise ActionFailed(f"POST {target}: no answer within {timeout:g}s", retryable=True) from None
    except httpx.TransportError as error:
        raise ActionFailed(f"POST {target}: {type(error).__name__}: {error}", retryable=True) from None


def message(response: httpx.Response, *keys: str) -> str:
    """What the service said: the first of `keys` in a JSON error body, else the start of the text."""
    try:
        decoded = response.json()
    except (ValueError, json.JSONDecodeError):
        decoded = None
    if isinstance(decoded, Mapping):
        for key in keys:
            value = decoded.get(key)
            if isinstance(value, Mapping):  # {"error": {"message": ...}}
                value = value.get("message")
            if value:
                return str(value)[:300]
    text = " ".join(response.text.split())
    return text[:200] + ("…" if len(text) > 200 else "")


def failed(response: httpx.Response, what: str, *, retryable: bool = False, hint: str = "") -> ActionFailed:
    """`what -> status: the service's message (hint)`, with the Retry-After of the answer when it has one."""
    said = message(response, "message", "error")
    text = f"{what} -> {response.status_code}" + (f": {said}" if said else "") + (f" ({hint})" if hint else "")
    return ActionFailed(text, retryable=retryable, retry_after=http.retry_after_seconds(response.headers))
