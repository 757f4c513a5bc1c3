"""What the local test servers share: a threaded HTTP server on 127.0.0.1 (a free port), scripted
replies taken in order, a clean shutdown, and a request handler for JSON services."""

from __future__ import annotations

import json
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Generic, TypeVar

ReplyT = TypeVar("ReplyT")


class LoopbackServer(Generic[ReplyT]):
    def __init__(self) -> None:
        self.replies: deque[ReplyT] = deque()
        self._lock = threading.Lock()

    def serve(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def script(self, *replies: ReplyT) -> None:
        """Replies for the next requests, in order."""
        self.replies.extend(replies)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class JsonHandler(BaseHTTPRequestHandler):
    """A handler for a JSON REST service: HTTP/1.1 (the SDK clients keep connections alive), no log lines."""

    protocol_version = "HTTP/1.1"

    def send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass
