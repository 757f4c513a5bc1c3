"""The destination guard and the connection under it: special addresses refused, one resolution and
one IDNA standard for guard and socket, TLS still naming the host, an overall deadline, capped bodies."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.platform.addresses import ascii_host, embedded_ipv4, refusal
from shared.platform.network import (
    DeadlineExceeded,
    DestinationRefused,
    GuardedTransport,
    deadline_at,
    read_capped,
)

SPECIAL = ["168.63.129.16", "100.64.0.1", "100.127.255.254", "100.100.100.200", "169.254.169.254", "127.0.0.1",
           "10.0.0.1", "172.16.0.1", "192.168.1.1", "0.0.0.0", "224.0.0.1", "255.255.255.255", "::1", "::",
           "fe80::1", "fc00::1", "::ffff:127.0.0.1", "::ffff:169.254.169.254", "::127.0.0.1",
           "2002:a9fe:a9fe::1", "2002:7f00:1::", "64:ff9b::a9fe:a9fe", "64:ff9b::a40:101", "64:ff9b:1::a64:6464",
           "2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001:0:a9fe:a9fe::1"]  # fmt: skip
PUBLIC = ["8.8.8.8", "20.50.2.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "2002:808:808::1", "64:ff9b::808:808"]


@pytest.mark.parametrize("address", SPECIAL)
def test_special_addresses_are_refused(address: str) -> None:
    assert refusal(address) is not None


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    assert refusal(address) is None


_SPECIAL_V4 = st.sampled_from(["10.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "100.64.0.0/10", "172.16.0.0/12",
                               "192.168.0.0/16", "168.63.129.16/32", "0.0.0.0/8"]).flatmap(
    lambda net: st.integers(0, ipaddress.ip_network(net).num_addresses - 1).map(
        lambda offset: ipaddress.ip_network(net)[offset]))  # fmt: skip


@given(_SPECIAL_V4, st.sampled_from(["mapped", "compatible", "6to4", "nat64", "nat64-local"]))
def test_every_ipv6_embedding_of_a_special_ipv4_address_is_refused(inner: ipaddress.IPv4Address, form: str) -> None:
    value = int(inner)
    outer = ipaddress.IPv6Address({
        "mapped": (0xFFFF << 32) | value,
        "compatible": value,
        "6to4": (0x2002 << 112) | (value << 80),
        "nat64": (0x64FF9B << 96) | value,
        "nat64-local": (0x64FF9B0001 << 80) | (value << 8),
    }[form])  # fmt: skip
    if form == "nat64-local":  # RFC 6052 /48: the address straddles the reserved u octet
        assert refusal(outer) is not None
        return
    if form == "compatible" and value <= 1:
        assert refusal(outer) is not None  # :: and ::1 themselves
        return
    assert inner in embedded_ipv4(outer)
    assert refusal(outer) is not None


def test_one_idna_standard_for_names() -> None:
    # UTS 46 non-transitional: the name checked is the name connected to (not fass.de).
    assert ascii_host("faß.de") == "xn--fa-hia.de"
    assert ascii_host("BÜCHER.example.") == "xn--bcher-kva.example"
    assert ascii_host("[::1]") == "::1"


# ---- the connection ----------------------------------------------------------------------------


class _Resolutions:
    """A resolver for test names: counts the lookups the client makes and answers with `answers`."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> None:
        self.calls: list[str] = []
        real = socket.getaddrinfo

        def lookup(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                ipaddress.ip_address(host)  # the socket's own look-up of an address: no resolution
            except ValueError:
                self.calls.append(host)
            if host in answers:
                address = answers[host].pop(0) if len(answers[host]) > 1 else answers[host][0]
                return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port)))]
            return real(host, port, *args, **kwargs)

        monkeypatch.setattr(socket, "getaddrinfo", lookup)


def _client(allow_private: bool = False, verify: ssl.SSLContext | None = None) -> httpx.Client:
    limits = httpx.Limits(max_connections=10)
    transport = GuardedTransport(verify=verify or ssl.create_default_context(), limits=limits,
                                 allow_private=allow_private)  # fmt: skip
    return httpx.Client(transport=transport, follow_redirects=False, trust_env=False)


def test_a_loopback_receiver_is_refused_before_anything_is_sent(receiver: Any) -> None:
    with _client() as client, pytest.raises(DestinationRefused, match=r"127\.0\.0\.1"):
        client.post(receiver.url + "/hook", content=b"{}")
    assert receiver.requests == []


def test_the_guard_and_the_socket_use_one_resolution(receiver: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # A rebinding name: a public address first, loopback on the next lookup.
    port = receiver.server.server_address[1]
    resolutions = _Resolutions(monkeypatch, {"rebind.test": ["8.8.8.8", "127.0.0.1"]})
    with _client() as client:
        with pytest.raises(httpx.ConnectError):
            # The guard approves 8.8.8.8 and the socket goes there (nothing listens in this sandbox or
            # it is blocked) — never to the loopback address a second lookup would give.
            with deadline_at(time.monotonic() + 2):
                client.post(f"http://rebind.test:{port}/hook", content=b"{}")
    assert resolutions.calls == ["rebind.test"]
    assert receiver.requests == []


def test_a_pinned_connection_keeps_the_host_header(receiver: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    port = receiver.server.server_address[1]
    resolutions = _Resolutions(monkeypatch, {"xn--fa-hia.test": ["127.0.0.1"]})
    with _client(allow_private=True) as client:
        response = client.post(f"http://{ascii_host('faß.test')}:{port}/hook", content=b"{}")
    assert response.status_code == 200
    assert resolutions.calls == ["xn--fa-hia.test"]
    assert receiver.requests[0].headers["host"] == f"xn--fa-hia.test:{port}"


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, list[str], ssl.SSLContext]]:
    """An HTTPS server for the name hooks.test (on 127.0.0.1) that records the SNI it is asked for."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hooks.test")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("hooks.test")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert_file, key_file)
    names: list[str] = []
    server_context.sni_callback = lambda _sock, server_name, _ctx: names.append(server_name)  # type: ignore[assignment,misc,func-returns-value]
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            try:
                with server_context.wrap_socket(connection, server_side=True) as tls:
                    request = b""
                    while not request.endswith(b"{}"):  # the whole request, so the client is done writing
                        request += tls.recv(65536) or b"{}"
                    tls.sendall(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            except (ssl.SSLError, OSError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client_context = ssl.create_default_context(cafile=str(cert_file))
    yield listener.getsockname()[1], names, client_context
    stop.set()
    thread.join()
    listener.close()


def test_tls_still_names_the_host_when_the_socket_is_pinned(
    tls_server: tuple[int, list[str], ssl.SSLContext], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, names, context = tls_server
    _Resolutions(monkeypatch, {"hooks.test": ["127.0.0.1"]})
    with _client(allow_private=True, verify=context) as client:
        response = client.post(f"https://hooks.test:{port}/hook", content=b"{}")
    assert response.status_code == 204
    assert names == ["hooks.test"]  # SNI, and the certificate was checked against hooks.test


class _Trickler:
    """A receiver that answers in single bytes, one every `pause` seconds, for ever (or `body` bytes in
    big chunks, for ever). Counts what it managed to send before the client hung up."""

    def __init__(self, *, headers_slowly: bool = False, flood: bool = False, pause: float = 0.02) -> None:
        self.sent = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.stop = threading.Event()
        self.closed = threading.Event()

        def serve() -> None:
            connection, _ = self.listener.accept()
            connection.recv(65536)
            head = b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n"
            try:
                if not headers_slowly:
                    connection.sendall(head)
                    head = b""
                while not self.stop.is_set():
                    chunk = head[:1] if head else (b"x" * 65536 if flood else b"x")
                    head = head[1:]
                    connection.sendall(chunk)
                    self.sent += len(chunk)
                    if not flood:
                        time.sleep(pause)
            except OSError:
                pass
            finally:
                connection.close()
                self.closed.set()

        threading.Thread(target=serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}/hook"

    def close(self) -> None:
        self.stop.set()
        self.listener.close()


@pytest.mark.parametrize("headers_slowly", [False, True])
def test_a_trickling_receiver_is_cut_at_the_overall_deadline(headers_slowly: bool) -> None:
    server = _Trickler(headers_slowly=headers_slowly)
    try:
        with _client(allow_private=True) as client, deadline_at(time.monotonic() + 0.3):
            # Per-operation timeouts alone would never fire: each byte arrives within 10 s.
            with pytest.raises(DeadlineExceeded):
                with client.stream("POST", server.url, content=b"{}", timeout=10) as response:
                    read_capped(response)
        assert server.closed.wait(5)
        # 0.3 s of bytes every 0.02 s is ~15; a client that waited for the whole body would never hang up.
        assert server.sent < 500
    finally:
        server.close()


def test_an_endless_body_is_read_up_to_the_cap() -> None:
    server = _Trickler(flood=True)
    try:
        with _client(allow_private=True) as client, client.stream("POST", server.url, content=b"{}") as response:
            body, more = read_capped(response, cap=100_000)
        assert len(body) == 100_000 and more
        assert server.closed.wait(5)
        assert server.sent < 50_000_000
    finally:
        server.close()
