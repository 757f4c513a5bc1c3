"""A local Azure Communication Services Email endpoint speaking the REST contract the real
`azure-communication-email` client uses (POST /emails:send -> 202 + Operation-Location, then GET
the operation until a terminal status), checking every request's HMAC-SHA256 signature.

Tests point the app at it with ACS_ENDPOINT=http://127.0.0.1:PORT and ACS_ACCESS_KEY=<key>.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from tests.support.loopback import JsonHandler, LoopbackServer

ACCESS_KEY = base64.b64encode(b"local-acs-fake-access-key-for-tests").decode()


@dataclass
class SendRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class SendReply:
    """How the fake answers one POST /emails:send. status 202 accepts; then polls see `final`."""

    status: int = 202
    final: str = "Succeeded"  # terminal operation status: Succeeded, Failed, Canceled
    headers: dict[str, str] = field(default_factory=dict)
    error: dict[str, str] | None = None  # {"code", "message"} for rejections and failed operations


class AcsFake(LoopbackServer[SendReply]):
    def __init__(self, access_key: str = ACCESS_KEY) -> None:
        super().__init__()
        self.key = base64.b64decode(access_key)
        self.sends: list[SendRequest] = []
        self.polls: list[str] = []
        self.signature_failures: list[str] = []
        self._operations: dict[str, SendReply] = {}
        fake = self

        class Handler(JsonHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if not fake._signed(self, body):
                    return self.send_json(401, {"error": {"code": "Denied", "message": "bad signature"}})
                with fake._lock:
                    fake.sends.append(
                        SendRequest(self.path, {k.lower(): v for k, v in self.headers.items()}, json.loads(body))
                    )
                    reply = fake.replies.popleft() if fake.replies else SendReply()
                if reply.status != 202:
                    return self.send_json(
                        reply.status, {"error": reply.error or {"code": "Error", "message": "no"}}, reply.headers
                    )
                operation = self.headers.get("Operation-Id") or str(uuid.uuid4())
                fake._operations[operation] = reply
                location = f"http://{self.headers['Host']}/emails/operations/{operation}?api-version=2025-09-01"
                headers = {"Operation-Location": location, "Retry-After": "0", **reply.headers}
                self.send_json(202, {"id": operation, "status": "Running"}, headers)

            def do_GET(self) -> None:
                if not fake._signed(self, b""):
                    return self.send_json(401, {"error": {"code": "Denied", "message": "bad signature"}})
                operation = urlsplit(self.path).path.rsplit("/", 1)[1]
                fake.polls.append(operation)
                reply = fake._operations.get(operation)
                if reply is None:
                    return self.send_json(404, {"error": {"code": "NotFound", "message": operation}})
                error = reply.error if reply.final != "Succeeded" else None
                self.send_json(200, {"id": operation, "status": reply.final, "error": error})

        self.serve(Handler)

    def _signed(self, request: BaseHTTPRequestHandler, body: bytes) -> bool:
        """The HMAC-SHA256 scheme of ACS: `VERB\\npath?query\\ndate;host;content-sha256`."""
        headers = request.headers
        content_hash = base64.b64encode(hashlib.sha256(body).digest()).decode()
        to_sign = f"{request.command}\n{request.path}\n{headers['x-ms-date']};{headers['Host']};{content_hash}"
        expected = base64.b64encode(hmac.new(self.key, to_sign.encode(), hashlib.sha256).digest()).decode()
        authorization = headers.get("Authorization", "")
        ok = headers.get("x-ms-content-sha256") == content_hash and authorization.endswith(f"&Signature={expected}")
        if not ok:
            self.signature_failures.append(f"{request.command} {request.path}")
        return ok
