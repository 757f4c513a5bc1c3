"""The connection layer under the app's httpx clients (webhook-style actions: handlers/common/http.py;
Table Storage: shared/platform/table_transport.py): the destination guard at connect time, an overall
deadline for every read and write, and a cap on response bodies.

- The guard runs where the connection is made (an httpcore network backend): the host is resolved
  once, every address it resolves to is judged (shared/platform/addresses.py), and the socket goes to an
  approved address. No second resolution can answer differently (DNS rebinding). TLS still names
  the host (SNI, certificate check) and the request keeps its Host header: only the socket is pinned.
- httpx's timeouts are per operation (a receiver trickling a byte every half second never trips
  them); the streams here cut every read and write at the caller's deadline (`deadline_at`).
- `read_capped` reads at most `cap` bytes of a body and drops the connection beyond that.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import httpcore
import httpx

from shared.platform.addresses import refusal

MAX_RESPONSE_BYTES = 256 * 1024  # what a webhook receiver's answer may take of a worker's memory

_local = threading.local()
_resolver = ThreadPoolExecutor(max_workers=4, thread_name_prefix="resolve")


class DestinationRefused(Exception):
    """The host resolves to an address the guard refuses: permanent, no retry helps."""


class DeadlineExceeded(Exception):
    """The caller's overall deadline passed during the request."""


@contextlib.contextmanager
def deadline_at(moment: float) -> Iterator[None]:
    """Every read, write and connect of this thread's requests ends by `moment` (time.monotonic())."""
    previous = getattr(_local, "deadline", None)
    _local.deadline = moment if previous is None else min(previous, moment)
    try:
        yield
    finally:
        _local.deadline = previous


def remaining(timeout: float) -> float:
    """`timeout`, or less when the thread's deadline comes sooner (at least a millisecond: a request
    made after the deadline fails at its first read or write, saying so)."""
    deadline = getattr(_local, "deadline", None)
    return timeout if deadline is None else max(0.001, min(timeout, deadline - time.monotonic()))


def _bounded(timeout: float | None, what: str) -> float:
    """`timeout`, shortened to what is left before the thread's deadline."""
    deadline = getattr(_local, "deadline", None)
    if deadline is None:
        return timeout if timeout is not None else 300.0
    left = deadline - time.monotonic()
    if left <= 0:
        raise DeadlineExceeded(f"the overall deadline passed while {what}")
    return left if timeout is None else min(timeout, left)


@contextlib.contextmanager
def _cut_at_deadline(what: str) -> Iterator[None]:
    """A timeout that the deadline shortened is the deadline passing, and says so."""
    try:
        yield
    except (httpcore.ReadTimeout, httpcore.WriteTimeout, httpcore.ConnectTimeout):
        deadline = getattr(_local, "deadline", None)
        if deadline is not None and time.monotonic() >= deadline:
            raise DeadlineExceeded(f"the overall deadline passed while {what}") from None
        raise


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        with _cut_at_deadline("reading the response"):
            return self._stream.read(max_bytes, _bounded(timeout, "reading the response"))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        with _cut_at_deadline("sending the request"):
            self._stream.write(buffer, _bounded(timeout, "sending the request"))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        with _cut_at_deadline("starting TLS"):
            tls = self._stream.start_tls(ssl_context, server_hostname, _bounded(timeout, "starting TLS"))
        return _DeadlineStream(tls)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class GuardedBackend(httpcore.NetworkBackend):
    """Resolves, judges and connects in one place. `allow_private`: skip the judging (on-premises)."""

    def __init__(self, allow_private: bool = False) -> None:
        self.allow_private = allow_private
        self._backend = httpcore.SyncBackend()

    def resolve(self, host: str, port: int, timeout: float) -> list[str]:
        future = _resolver.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
        try:
            infos = future.result(timeout=timeout)
        except FutureTimeout:
            raise httpcore.ConnectTimeout(f"resolving {host!r} took longer than {timeout:.3g}s") from None
        except socket.gaierror as error:
            raise httpcore.ConnectError(f"cannot resolve host {host!r}: {error.strerror}") from None
        return list(dict.fromkeys(str(info[4][0]) for info in infos))

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = self.resolve(host, port, _bounded(timeout, "resolving the host"))
        if not self.allow_private:
            for address in addresses:
                if (why := refusal(address)) is not None:
                    raise DestinationRefused(
                        f"refused destination {host!r}: it resolves to {address}, a non-public address ({why}) "
                        "(set allow_private: true on the action for an on-premises or test receiver)"
                    )
        error: Exception | None = None
        for address in addresses:
            try:
                with _cut_at_deadline("connecting"):
                    stream = self._backend.connect_tcp(
                        address, port, _bounded(timeout, "connecting"), local_address, socket_options
                    )
                return _DeadlineStream(stream)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as failed:
                error = failed
        raise error or httpcore.ConnectError(f"{host!r} resolves to no address")

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        raise DestinationRefused("unix sockets are not a webhook destination")

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport on the guarded backend (the pool is httpx's own, built the same way)."""

    def __init__(self, *, verify: ssl.SSLContext, limits: httpx.Limits, allow_private: bool = False) -> None:
        super().__init__(verify=verify, limits=limits)
        self._pool = httpcore.ConnectionPool(
            ssl_context=verify,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(allow_private),
        )


def read_capped(response: httpx.Response, cap: int = MAX_RESPONSE_BYTES) -> tuple[bytes, bool]:
    """Up to `cap` bytes of a streamed response's body, and whether there was more (not read)."""
    body = bytearray()
    for chunk in response.iter_raw():
        body += chunk
        if len(body) > cap:
            return bytes(body[:cap]), True
    return bytes(body), False
