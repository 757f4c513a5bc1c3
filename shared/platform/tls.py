"""One TLS context per worker, shared by every outgoing HTTPS client the app makes (the Table Storage
transport, the webhook client): loading the trusted CA certificates takes 25-40 ms each time.

OpenSSL reads the certificates without holding the GIL, so the first event starts that load on a
thread of its own (`load_in_background`) while it imports the engine and the storage SDK.
"""

from __future__ import annotations

import ssl
import threading

_context: ssl.SSLContext | None = None
_lock = threading.Lock()


def tls_context() -> ssl.SSLContext:
    """What httpx builds for `verify=True`: SSL_CERT_FILE / SSL_CERT_DIR when set, else certifi's CAs.
    Made once per worker; a caller that comes while the background load runs waits for it."""
    global _context
    with _lock:
        if _context is None:
            import httpx

            _context = httpx.create_ssl_context()
        return _context


def load_in_background() -> None:
    threading.Thread(target=tls_context, name="tls-context", daemon=True).start()
