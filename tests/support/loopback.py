"""What the local test servers share: a threaded HTTP server on 127.0.0.1 (a free port), scripted
replies taken in order, and a clean shutdown."""

from __future__ import annotations

import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Generic, TypeVar

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
