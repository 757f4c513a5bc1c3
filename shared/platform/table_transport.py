"""The HTTP transport of the app's Table Storage clients: httpx, which the app uses for its webhooks
anyway, instead of the SDK's default requests + urllib3 (~45 ms more on a worker's first event).

Table responses are small JSON documents (or the multipart answer to a transaction), so each body
is read whole before the SDK sees it. Errors map as azure-core's requests transport maps them:
the request could not be sent -> ServiceRequestError, no complete answer -> ServiceResponseError
(timeouts as their ...TimeoutError subclasses); the SDK's retry policy decides what to retry, then
the ledger reports storage unavailable.
"""

from __future__ import annotations

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

from shared.platform.tls import tls_context

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

    def __init__(self, *, connection_timeout: float, read_timeout: float) -> None:
        self.connection_timeout = connection_timeout
        self.read_timeout = read_timeout
        # The SDK follows redirects itself (its RedirectPolicy), so httpx must not.
        self.client = httpx.Client(verify=tls_context(), follow_redirects=False)

    def open(self) -> None:
        pass  # the client is open from the start, for the life of the worker

    def close(self) -> None:
        pass

    def __enter__(self) -> TableTransport:
        return self

    def __exit__(self, *args: Any) -> None:
        pass

    def send(self, request: Any, **kwargs: Any) -> TableResponse:
        """`request` is an azure.core.rest.HttpRequest, or the SDK's older kind for transactions."""
        timeout = httpx.Timeout(
            kwargs.get("read_timeout") or self.read_timeout,
            connect=kwargs.get("connection_timeout") or self.connection_timeout,
        )
        body = request.content if isinstance(request, HttpRequest) else request.data
        try:
            response = self.client.request(
                request.method, request.url, headers=dict(request.headers), content=body, timeout=timeout
            )
        except _NOT_SENT_IN_TIME as error:
            raise ServiceRequestTimeoutError(error, error=error) from error
        except _NOT_SENT as error:
            raise ServiceRequestError(error, error=error) from error
        except httpx.TimeoutException as error:
            raise ServiceResponseTimeoutError(error, error=error) from error
        except httpx.TransportError as error:
            raise ServiceResponseError(error, error=error) from error
        return TableResponse(request, response)
