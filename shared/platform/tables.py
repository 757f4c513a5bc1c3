"""Values Table Storage accepts: keys without forbidden characters, text without lone surrogates."""

from __future__ import annotations

from typing import Any

_FORBIDDEN_KEY_CHARS = str.maketrans({c: f"%{ord(c):02X}" for c in "/\\#?%\t\n\r"})


def table_key(text: str) -> str:
    """Table Storage forbids / \\ # ? and control characters in keys; escape them reversibly."""
    return storable(text).translate(_FORBIDDEN_KEY_CHARS)


def storable(text: str) -> str:
    """Text the storage service can carry: a lone surrogate (valid JSON "\\ud800", not valid UTF-8)
    is written as its escape instead of failing the request."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def storable_entity(entity: dict[str, Any]) -> dict[str, Any]:
    return {name: storable(value) if isinstance(value, str) else value for name, value in entity.items()}
