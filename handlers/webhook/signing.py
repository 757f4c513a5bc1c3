"""Standard Webhooks signatures: how a receiver proves that a
webhook came from us and was not replayed.

The secret is written as the specification gives it, `whsec_` followed by base64; the HMAC key is
the decoded bytes. We sign `{webhook-id}.{webhook-timestamp}.{body}` with HMAC-SHA256 and send
`v1,<base64 signature>`; the id is the ledger key, stable across retries, so a receiver can also
de-duplicate on it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time

SECRET_PREFIX = "whsec_"  # noqa: S105 (the format marker, not a secret)
# The specification recommends keys of 24 to 64 bytes.
MIN_KEY_BYTES, MAX_KEY_BYTES = 24, 64
SIGNATURE_HEADERS = frozenset({"webhook-id", "webhook-timestamp", "webhook-signature"})
GENERATE_HINT = (
    'make one with: python -c "import base64, secrets; '
    "print('whsec_' + base64.b64encode(secrets.token_bytes(32)).decode())\""
)


def signing_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_...` secret; ValueError says what is wrong (never echoing the secret)."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"must start with {SECRET_PREFIX!r} followed by base64; {GENERATE_HINT}")
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"is not valid base64 after {SECRET_PREFIX!r}; {GENERATE_HINT}") from None
    if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        raise ValueError(
            f"decodes to {len(key)} bytes; the specification asks for {MIN_KEY_BYTES} to {MAX_KEY_BYTES}; "
            f"{GENERATE_HINT}"
        )
    return key


def signature_headers(key: bytes, message_id: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The three Standard Webhooks headers for one delivery attempt of `body`."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{message_id}.{timestamp}.".encode() + body
    signature = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode("ascii")
    return {"webhook-id": message_id, "webhook-timestamp": str(timestamp), "webhook-signature": f"v1,{signature}"}
