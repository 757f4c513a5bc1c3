"""Values Table Storage accepts, made from untrusted text (event ids, run tags, template output).

Table Storage keys may not hold / \\ # ? or control characters and are at most 1 KiB; a string
property is at most 64 KiB; lone surrogates are not UTF-8. Every key derived from event data goes
through `table_key`: reversible escaping while the result is short, else a readable prefix and a
hash of the whole text. Distinct texts never share a key: escaped keys never contain `%~` (a literal
`%` is escaped), hashed keys always do, and two hashed keys differ unless SHA-256 collides.
`derived_key` keys what is derived from a keyed text (a model monitor's drift signal from its run
event) in a namespace no `table_key` reaches; `file_name` gives the same guarantees for file names
on any file system (case-insensitive ones too).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import Any

# A Table key is at most 1 KiB; a key part keeps room for what is joined to it (route, derived names).
MAX_KEY_BYTES = 640
_HASH_MARK = "%~"  # never produced by escaping: every literal % becomes %25
_DERIVED_MARK = "%!derived"  # likewise never produced by escaping
_PLAIN = re.compile(r"[A-Za-z0-9 !$&'()*+,\-.:;<=>@\[\]^_`{|}~\"]*")  # printable ASCII needing no escape
_SAFE_FILE = re.compile(r"[a-z0-9_-][a-z0-9._-]{0,99}")


def _escape_char(char: str) -> str:
    code = ord(char)
    if char in "/\\#?%" or code < 0x20 or 0x7F <= code <= 0x9F:
        return f"%{code:02X}"
    if 0xD800 <= code <= 0xDFFF or unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
        # lone surrogates (not UTF-8), format and unassigned characters: visible, unambiguous
        return f"%u{code:04X}" if code <= 0xFFFF else f"%U{code:08X}"
    return char


def _escape(text: str) -> str:
    return "".join(_escape_char(char) for char in text)


def text_digest(text: str) -> str:
    """SHA-256 of any Python string, lone surrogates included."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _size(text: str) -> int:
    """Bytes in the larger of the two encodings the service may count in."""
    return max(len(text.encode("utf-8")), len(text.encode("utf-16-le")))


def table_key(text: str, max_bytes: int = MAX_KEY_BYTES) -> str:
    """A Table Storage key (or key part) for `text`: injective, at most `max_bytes` (≥ 200) in UTF-8
    and UTF-16. Only as much of a long text is escaped as the key can show."""
    if _PLAIN.fullmatch(text) and 2 * len(text) <= max_bytes:
        return text
    parts, used = [], 0
    for char in text:
        part = _escape_char(char)
        used += _size(part)
        if used > max_bytes:
            break
        parts.append(part)
    else:
        return "".join(parts)
    # Too long: a readable prefix (whole escapes only), then the hash of the whole text.
    budget, used = max_bytes - _size(_HASH_MARK) - 128, 0
    prefix = []
    for part in parts:
        used += _size(part)
        if used > budget:
            break
        prefix.append(part)
    return "".join(prefix) + _HASH_MARK + text_digest(text)


def derived_key(parent_key: str) -> str:
    """The key of the event derived from the event keyed `parent_key` (at most one per event)."""
    return parent_key + _DERIVED_MARK


def file_name(text: str, extension: str = "") -> str:
    """A file name for `text`: the text itself when it is plain lowercase ASCII (at most 100
    characters), else a readable part and a hash. Distinct texts never share a name."""
    if _SAFE_FILE.fullmatch(text):
        return text + extension
    readable = re.sub(r"[^a-z0-9._-]+", "_", text.lower())[:60].strip(".") or "_"
    return f"{readable}~{text_digest(text)[:40]}{extension}"


def storable(text: str) -> str:
    """Text the storage service can carry: a lone surrogate (valid JSON "\\ud800", not valid UTF-8)
    is written as its escape instead of failing the request."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def storable_entity(entity: dict[str, Any]) -> dict[str, Any]:
    return {name: storable(value) if isinstance(value, str) else value for name, value in entity.items()}
