"""Outgoing HTTP for the webhook-style actions: one pooled client per worker, a destination guard,
and one mapping from HTTP results to done / retryable / permanent failure."""

from __future__ import annotations

import ipaddress
import json
import socket
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

import httpx

from shared.actions import Action, ActionContext, ActionFailed
from shared.platform.tls import tls_context
from shared.problems import Problems

_client: httpx.Client | None = None
_client_lock = threading.Lock()

# Header names whose values are credentials: previews never show them.
_CREDENTIAL_WORDS = ("authorization", "key", "token", "secret", "cookie", "password", "signature")
# Status codes worth another attempt, for every service the actions call (webhooks, ACS, Azure ML):
# the receiver is busy, rate-limiting, too early (425) or briefly broken.
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


def client() -> httpx.Client:
    """The worker's shared client: connections are reused across events and actions."""
    global _client
    with _client_lock:
        if _client is None:
            _client = httpx.Client(
                follow_redirects=False,  # a redirect could lead past the destination guard
                limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
                headers={"User-Agent": "aml-event-actions/1.0"},
                verify=tls_context(),  # the worker's one TLS context, also the storage transport's
            )
        return _client


def safe_target(url: str) -> str:
    """Host and path of a URL, without credentials or query (Teams/Slack URLs carry secrets there)."""
    parts = urlsplit(url)
    return f"{parts.hostname or ''}{':' + str(parts.port) if parts.port else ''}{parts.path}"


def check_url(url: str) -> str | None:
    """A problem with a configured URL, or None."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an absolute http(s) URL"
    return None


def guard_destination(url: str) -> None:
    """Refuse loopback, private, link-local and metadata addresses (server-side request forgery)."""
    host = urlsplit(url).hostname or ""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except socket.gaierror as error:
        raise ActionFailed(f"cannot resolve host {host!r}: {error.strerror}", retryable=True) from None
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if (
            ip.is_loopback
            or ip.is_private
            or ip.is_link_local
            or ip.is_reserved
            or ip.is_multicast
            or ip.is_unspecified
        ):
            raise ActionFailed(
                f"refused destination {host!r}: it resolves to {ip}, a non-public address "
                "(set allow_private: true on the action for an on-premises or test receiver)"
            )


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


def post(
    url: str,
    *,
    content: bytes,
    headers: Mapping[str, str],
    timeout: float,
    allow_private: bool = False,
) -> httpx.Response:
    """POST and return the 2xx response; raise ActionFailed otherwise (retryable when worth it)."""
    if not allow_private:
        guard_destination(url)
    target = safe_target(url)
    try:
        response = client().post(url, content=content, headers=dict(headers), timeout=timeout)
    except httpx.TimeoutException:
        raise ActionFailed(f"POST {target}: no answer within {timeout:g}s", retryable=True) from None
    except httpx.TransportError as error:
        raise ActionFailed(f"POST {target}: {type(error).__name__}: {error}", retryable=True) from None
    if 200 <= response.status_code < 300:
        return response
    raise ActionFailed(
        f"POST {target} -> {response.status_code} {_snippet(response)}".rstrip(),
        retryable=response.status_code in RETRYABLE_STATUS,
        retry_after=retry_after_seconds(response.headers),
    )


def _snippet(response: httpx.Response) -> str:
    text = response.text.strip().replace("\n", " ")
    return text[:200] + ("…" if len(text) > 200 else "")


def header_value(text: str) -> str:
    """Text fit for an HTTP header (ASCII): event ids may hold any Unicode, so percent-encode it."""
    return quote(text.encode("utf-8", "backslashreplace"), safe="/:@!$&'()*+,;=-._~")


def shown_header(name: str, value: str) -> str:
    """A header value fit for a preview: a credential is never shown."""
    lowered = name.lower()
    if lowered.startswith("webhook-") or lowered == "idempotency-key":  # signatures and ids: not secrets
        return value
    return "<hidden>" if any(word in lowered for word in _CREDENTIAL_WORDS) else value


def request_preview(url: str, headers: Mapping[str, str], body: bytes) -> str:
    """An HTTP request as a preview shows it: the URL without its query (Teams, Slack and SAS URLs carry
    secrets there), headers with credentials hidden, the JSON body pretty-printed."""
    text = body.decode("utf-8", "replace")
    try:
        text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        pass
    lines = [f"POST {url.split('?', 1)[0]}", *(f"{name}: {shown_header(name, v)}" for name, v in headers.items())]
    return "\n".join(lines) + "\n\n" + text + "\n"


def json_bytes(body: Any) -> bytes:
    # A lone surrogate (JSON allows "\ud800") cannot be UTF-8; its backslash escape is valid JSON again.
    return json.dumps(body, default=str, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "backslashreplace")


class PostAction(Action):
    """An action that POSTs to a configured `url` (webhook, Teams, Slack): the options, URL check,
    safe target and destination guard they share."""

    OPTIONS: ClassVar[Mapping[str, bool]] = {"url": True, "allow_private": False}

    def configure(self, problems: Problems, line: int) -> None:
        self.url = str(self.options.get("url") or "")
        if self.url and (problem := check_url(self.url)):
            problems.add(line, f"{self.kind}: url {problem}")
        self.allow_private = bool(self.options.get("allow_private", False))

    @property
    def target(self) -> str:
        return safe_target(self.url)

    def post(self, ctx: ActionContext, body: bytes, headers: Mapping[str, str]) -> httpx.Response:
        return post(self.url, content=body, headers=headers, timeout=ctx.remaining(), allow_private=self.allow_private)
