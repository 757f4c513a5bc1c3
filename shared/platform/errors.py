"""Errors as the app records them: bounded, one line."""

from __future__ import annotations


def first_line(error: BaseException) -> str:
    """The first line of an error's message (an Azure SDK error's own `message` where it has one, without
    the response it carries), at most 300 characters; the error's type when it has no message."""
    text = str(getattr(error, "message", None) or error).strip()
    return text.splitlines()[0][:300] if text else type(error).__name__
