"""The HTTP transport of the app's Table Storage clients: httpx, which the app uses for its webhooks
anyway, instead of the SDK's default requests + urllib3 (~45 ms more on a worker's first event).

Table responses are small JSON documents (or the multipart answer to a transaction), so each body
is read whole before the SDK sees it. Errors map as azure-core's requests transport maps them:
the request could not be sent -> ServiceRequestError, no complete answer -> ServiceResponseError
(timeouts as their ...TimeoutError subclasses), and the ledger reports storage unavailable.

Retries are made here, not by the SDK's retry policy (whose clients get `retry_total=0`), because its
backoff sleeps cannot be bounded: every read, write and backoff ends by the calling thread's deadline
(shared/platform/network.py; the engine sets the invocation's), and a retry that would not fit is
not made. A storage that accepts connections but never answers costs no more than the budget.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
from azure.core.exceptions import (
    ServiceRequestError,
    ServiceRequestTimeoutError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)
from azure.core.pipeline.transport import HttpTransport
from azure.core.rest import HttpRequest

# azure-core's base for transport responses (its requests and aiohttp transports build on it); it
# also gives the SDK's older calls, `body()` and the `parts()` of a transaction's answer.
from azure.core.rest._http_response_impl import HttpResponseImpl

from shared.platform.network import DeadlineExceeded, GuardedTransport, remaining
from shared.platform.tls import tls_context

# Answers worth another attempt, as the SDK's retry policy has them.
RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
# The request did not (wholly) reach the service; anything else failed while waiting for its answer.
_NOT_SENT_IN_TIME = (httpx.ConnectTimeout, httpx.PoolTimeout, httpx.WriteTimeout)
_NOT_SENT = (
    httpx.ConnectError,
    httpx.WriteError,
    httpx.ProxyError,
    httpx.UnsupportedProtocol,
    httpx.LocalProtocolError,
)


class TableResponse(HttpResponseImpl):
    def __init__(self, request: Any, response: httpx.Response) -> None:
        super().__init__(
            request=request,
            internal_response=response,
            status_code=response.status_code,
            headers=response.headers,
            reason=response.reason_phrase,
            content_type=response.headers.get("content-type"),
            stream_download_generator=_whole_body,
        )
        self._content = response.content  # read by httpx already


def _whole_body(response: TableResponse, pipeline: Any = None, **kwargs: Any) -> Iterator[bytes]:
    yield response.content


class TableTransport(HttpTransport):
    """Sends the SDK's requests through one httpx client of its own (its own connection pool: a
    storm of slow webhooks cannot starve the ledger of connections), with the worker's TLS context.
    `connection_timeout` and `read_timeout` as the SDK's own transports take them: set here, or per
    request by the SDK's retry policy."""

    def __init__(
        self, *, connection_timeout: float, read_timeout: float, retries: int = 3, backoff: float = 0.2,
        backoff_max: float = 2.0,
    ) -> None:  # fmt: skip
        self.connection_timeout = connection_timeout
        self.read_timeout = read_timeout
        self.retries, self.backoff, self.backoff_max = retries, backoff, backoff_max
        # The SDK follows redirects itself (its RedirectPolicy), so httpx must not. Storage is the app's
        # own account (Azurite on loopback locally): no destination guard, only the deadline.
        transport = GuardedTransport(verify=tls_context(), limits=httpx.Limits(), allow_private=True)
        self.client = httpx.Client(transport=transport, follow_redirects=False, trust_env=False)

    def open(self) -> None:
        pass  # the client is open from the start, for the life of the worker

    def close(self) -> None:
        pass

    def __enter__(self) -> TableTransport:
        return self

    def __exit__(self, *args: Any) -> None:
        pass

    def send(self, request: Any, **kwargs: Any) -> TableResponse:
        """`request` is an azure.core.rest.HttpRequest, or the SDK's older kind for transactions. Retried
        (as the SDK's policy would: failures to send or to answer, 408/429/5xx) while the deadline allows."""
        for attempt in range(self.retries + 1):
            try:
                response = self._send_once(request, **kwargs)
            except (ServiceRequestError, ServiceResponseError):
                if attempt == self.retries or not self._wait_before_retry(attempt, None):
                    raise
                continue
            if response.status_code not in RETRY_STATUS or attempt == self.retries:
                return response
            if not self._wait_before_retry(attempt, response.headers.get("retry-after")):
                return response
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _wait_before_retry(self, attempt: int, retry_after: str | None) -> bool:
        """Sleep before the next attempt; False when the deadline leaves no time for it."""
        wait = min(self.backoff_max, self.backoff * 2**attempt)
        if retry_after:
            try:
                wait = max(wait, float(retry_after))
            except ValueError:
                pass
        if remaining(wait + 0.05) < wait + 0.05:  # the attempt after the wait would have no time
            return False
        time.sleep(wait)
        return True

    def _send_once(self, request: Any, **kwargs: Any) -> TableResponse:
        timeout = httpx.Timeout(
            remaining(kwargs.get("read_timeout") or self.read_timeout),
            connect=remaining(kwargs.get("connection_timeout") or self.connection_timeout),
        )
        body = request.content if isinstance(request, HttpRequest) else request.data
        try:
            response = self.client.request(
                request.method, request.url, headers=dict(request.headers), content=body, timeout=timeout
            )
        except DeadlineExceeded as error:
            raise ServiceResponseTimeoutError(f"no answer within the invocation's budget: {error}") from error
        except _NOT_SENT_IN_TIME as error:
            raise ServiceRequestTimeoutError(error, error=error) from error
        except _NOT_SENT as error:
            raise ServiceRequestError(error, error=error) from error
        except httpx.TimeoutException as error:
            raise ServiceResponseTimeoutError(error, error=error) from error
        except httpx.TransportError as error:
            raise ServiceResponseError(error, error=error) from error
        return TableResponse(request, response)
