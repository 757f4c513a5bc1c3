"""What the local HTTPS service fakes (GitHub, Azure DevOps, Event Grid) share: a threaded server on
127.0.0.1 with the self-signed certificate of tests/support/certificate.py, every request recorded,
replies scripted ahead of the service's own answers, and the CA bundle that makes the app trust it.

A subclass implements `answer(request)` with the service's documented contract.
"""

from __future__ import annotations

import base64
import json
import ssl
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.certificate import self_signed_certificate


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names in lower case
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Answer:
    status: int
    body: Any = None  # JSON-ready; bytes are sent as they are; None: no body
    headers: dict[str, str] = field(default_factory=dict)


class HttpsFake:
    """`script(Answer(...))` answers the next requests, in order, before the contract does."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.scripted: deque[Answer] = deque()
        self._lock = threading.Lock()
        certificate = self_signed_certificate()
        self.ca_bundle = ca_bundle(certificate[0])
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(
                    self.command,
                    parts.path,
                    {name: values[0] for name, values in parse_qs(parts.query).items()},
                    {name.lower(): value for name, value in self.headers.items()},
                    self.rfile.read(length) if length else b"",
                )
                with fake._lock:
                    fake.requests.append(request)
                    scripted = fake.scripted.popleft() if fake.scripted else None
                answer = scripted or fake.answer(request)
                body = (
                    answer.body
                    if isinstance(answer.body, bytes) or answer.body is None
                    else json.dumps(answer.body).encode()
                )
                self.send_response(answer.status)
                headers = dict(answer.headers)
                if body and not isinstance(answer.body, bytes):
                    headers.setdefault("Content-Type", "application/json; charset=utf-8")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                if body:
                    self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*certificate)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, request: Request) -> Answer:
        raise NotImplementedError

    def script(self, *answers: Answer) -> None:
        with self._lock:
            self.scripted.extend(answers)

    def sent(self, method: str, path_suffix: str = "") -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path.endswith(path_suffix)]

    def forget(self) -> None:
        with self._lock:
            self.requests.clear()
            self.scripted.clear()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def token_claims(token: str) -> dict[str, Any]:
    """The claims of an Entra access token, unverified (the local identity endpoint's tokens are unsigned)."""
    try:
        payload = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}


def ca_bundle(certificate: str) -> str:
    """certifi's CAs plus the local certificate, for SSL_CERT_FILE (httpx) and REQUESTS_CA_BUNDLE (the
    azure-core requests transport)."""
    import certifi

    bundle = Path(certificate).with_name("ca-bundle.pem")
    if not bundle.exists():
        bundle.write_text(Path(certifi.where()).read_text() + "\n" + Path(certificate).read_text())
    return str(bundle)
