"""Outgoing HTTP for the webhook-style actions: pooled clients per worker, the destination guard,
and one mapping from HTTP results to done / retryable / permanent failure.

The guard, the overall deadline and the body cap are in the connection layer under the clients
(shared/platform/network.py): the host is resolved once, judged, and connected to at the approved
address; every read and write ends by the action's deadline; at most MAX_RESPONSE_BYTES of an answer
is read. Chat webhook URLs (Slack, Teams) carry their secret in the path or query: they are shown as
host and fingerprint only, and no path segment or query value of them reaches a record or a log line.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

import httpx

from shared.actions import Action, ActionContext, ActionFailed
from shared.platform.addresses import HostProblem, ascii_host, refusal
from shared.platform.network import (
    DeadlineExceeded,
    DestinationRefused,
    GuardedTransport,
    deadline_at,
    read_capped,
)
from shared.platform.tls import tls_context
from shared.problems import Problems

_clients: dict[bool, httpx.Client] = {}
_client_lock = threading.Lock()

# Header names whose values are credentials: previews never show them.
_CREDENTIAL_WORDS = ("authorization", "key", "token", "secret", "cookie", "password", "signature")
# Status codes worth another attempt, for every service the actions call (webhooks, ACS, Azure ML):
# the receiver is busy, rate-limiting, too early (425) or briefly broken.
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


def client(allow_private: bool = False) -> httpx.Client:
    """The worker's shared client (one for guarded destinations, one for `allow_private` ones, so a
    connection kept alive for an on-premises receiver is never reused by a guarded action)."""
    with _client_lock:
        if allow_private not in _clients:
            limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
            _clients[allow_private] = httpx.Client(
                # the worker's one TLS context, also the storage transport's
                transport=GuardedTransport(verify=tls_context(), limits=limits, allow_private=allow_private),
                follow_redirects=False,  # a redirect could lead past the destination guard
                headers={"User-Agent": "aml-event-actions/1.0"},
                trust_env=False,  # a proxy would resolve and connect on its own, past the guard
            )
        return _clients[allow_private]


def safe_target(url: str, *, secret_path: bool = False) -> str:
    """The URL as records and logs show it: host and path without credentials or query, or (for
    URLs whose path is a secret) host and a short fingerprint of the whole URL."""
    parts = urlsplit(url)
    host = f"{parts.hostname or ''}{':' + str(parts.port) if parts.port else ''}"
    if secret_path:
        return f"{host} #{hashlib.sha256(url.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"
    return f"{host}{parts.path}"


def url_secrets(url: str, *, path_too: bool) -> tuple[str, ...]:
    """What of a URL must never be written: its userinfo and query values long enough to be a token,
    and (`path_too`, a URL whose path is a credential) itself, its path and its path segments."""
    parts = urlsplit(url)
    pieces = [parts.password or "", parts.query, *(value for _, value in parse_qsl(parts.query))]
    if path_too:
        pieces += [url, parts.path, *parts.path.split("/")]
    return tuple(sorted({piece for piece in pieces if len(piece) >= 8}, key=len, reverse=True))


def check_url(url: str) -> str | None:
    """A problem with a configured URL, or None."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        return f"is not a valid URL: {error}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an absolute http(s) URL"
    if port == 0:
        return "port must be from 1 to 65535"
    try:
        ascii_host(parts.hostname)
    except HostProblem as problem:
        return str(problem)
    return None


def guard_destination(url: str) -> None:
    """The destination guard for clients that connect on their own (an Azure SDK's transport): the
    host's addresses judged before the call. The app's own clients judge at connect time instead."""
    host = urlsplit(url).hostname or ""
    try:
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(ascii_host(host), None)}
    except (socket.gaierror, HostProblem) as error:
        raise ActionFailed(f"cannot resolve host {host!r}: {error}", retryable=True) from None
    for address in sorted(addresses):
        if (why := refusal(address)) is not None:
            raise ActionFailed(
                f"refused destination {host!r}: it resolves to {address}, a non-public address ({why}) "
                "(set allow_private: true on the action for an on-premises or test receiver)"
            )


def connectable_url(url: str) -> str:
    """`url` with its host in ASCII (UTS #46): what the guard judges is what is connected to."""
    parts = urlsplit(url)
    host = ascii_host(parts.hostname or "")
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc += f":{parts.port}"
    if parts.username is not None:
        userinfo = parts.username + (f":{parts.password}" if parts.password is not None else "")
        netloc = f"{userinfo}@{netloc}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


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


@dataclass(frozen=True)
class Answer:
    """A receiver's answer: status, headers and (at most MAX_RESPONSE_BYTES of) its body."""

    status_code: int
    headers: httpx.Headers
    body: bytes
    truncated: bool

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)


def exchange(
    url: str,
    *,
    content: bytes,
    headers: Mapping[str, str],
    deadline: float,
    allow_private: bool = False,
    target: str | None = None,
) -> Answer:
    """POST and return the answer, whatever its status, by `deadline` (time.monotonic()). A refused
    destination is a permanent ActionFailed; no connection or no complete answer in time a retryable one.
    `target`: how the URL is named in errors (safe_target by default)."""
    target = target or safe_target(url)
    budget = max(0.001, deadline - time.monotonic())
    try:
        request = client(allow_private).stream("POST", url, content=content, headers=dict(headers), timeout=budget)
        with deadline_at(deadline), request as response:
            body, truncated = read_capped(response)
    except DestinationRefused as refused:
        raise ActionFailed(str(refused)) from None
    except (DeadlineExceeded, httpx.TimeoutException):
        raise ActionFailed(f"POST {target}: no answer within {budget:.3g}s", retryable=True) from None
    except httpx.TransportError as error:
        raise ActionFailed(f"POST {target}: {type(error).__name__}: {error}", retryable=True) from None
    return Answer(response.status_code, response.headers, body, truncated)


def post(
    url: str,
    *,
    content: bytes,
    headers: Mapping[str, str],
    deadline: float,
    allow_private: bool = False,
    target: str | None = None,
) -> Answer:
    """`exchange`, and the 2xx answer; ActionFailed otherwise (retryable when worth it)."""
    target = target or safe_target(url)
    answer = exchange(url, content=content, headers=headers, deadline=deadline, allow_private=allow_private,
                      target=target)  # fmt: skip
    if 200 <= answer.status_code < 300:
        return answer
    raise ActionFailed(
        f"POST {target} -> {answer.status_code} {_snippet(answer.body)}".rstrip(),
        retryable=answer.status_code in RETRYABLE_STATUS,
        retry_after=retry_after_seconds(answer.headers),
    )


def _snippet(body: bytes) -> str:
    text = body[:1000].decode("utf-8", "replace").strip().replace("\n", " ")
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
    """Valid JSON whatever the data: a lone surrogate (JSON allows "\\ud800", UTF-8 does not) as its
    backslash escape, a float that is not finite (NaN, Infinity: not JSON) as null."""
    options: dict[str, Any] = {"default": str, "separators": (",", ":"), "ensure_ascii": False}
    try:
        text = json.dumps(body, allow_nan=False, **options)
    except ValueError:  # a NaN or Infinity somewhere (json.loads reads them from event data)
        text = json.dumps(json.loads(json.dumps(body, **options), parse_constant=lambda _: None), **options)
    return text.encode("utf-8", "backslashreplace")


class PostAction(Action):
    """An action that POSTs to a configured `url` (webhook, Teams, Slack): the options, URL check,
    safe target and destination guard they share."""

    OPTIONS: ClassVar[Mapping[str, bool]] = {"url": True, "allow_private": False}
    SECRET_PATH: ClassVar[bool] = False  # the URL's path and query are a credential (chat webhooks)

    def configure(self, problems: Problems, line: int) -> None:
        self.url = str(self.options.get("url") or "")
        if self.url and (problem := check_url(self.url)):
            problems.add(line, f"{self.kind}: url {problem}")
            self.url = ""
        elif self.url:
            self.url = connectable_url(self.url)
        self.allow_private = bool(self.options.get("allow_private", False))

    @property
    def target(self) -> str:
        return safe_target(self.url, secret_path=self.SECRET_PATH)

    @property
    def secrets(self) -> tuple[str, ...]:
        return url_secrets(self.url, path_too=self.SECRET_PATH)

    def post(self, ctx: ActionContext, body: bytes, headers: Mapping[str, str]) -> Answer:
        return post(self.url, content=body, headers=headers, deadline=ctx.deadline, allow_private=self.allow_private,
                    target=self.target)  # fmt: skip
