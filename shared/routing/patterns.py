"""Regular expressions from configuration applied to untrusted text, in bounded time.

An operator's `matches:` pattern can backtrack catastrophically (`^(a+)+$` against a crafted
experiment name). Patterns are compiled with the `regex` library, whose matching takes a timeout,
and checked at validation: a pattern that does not compile, or that takes longer than the limit on a
few adversarial probes, is a validation problem. At run time the text searched is capped and a
search that runs out of time counts as no match and says so in the log (never silently).
"""

from __future__ import annotations

import functools
from typing import Any

MATCH_TIMEOUT_SECONDS = 0.25
MAX_TEXT_CHARS = 64 * 1024  # what one `matches:` searches of a value
_PROBE_TIMEOUT_SECONDS = 0.2  # catastrophic patterns take far longer; simple ones microseconds
# Inputs that make backtracking patterns explode: long runs of one character with a bad ending.
_PROBES = tuple(run + end for run in ("a" * 3000, "0" * 3000, " " * 3000, "-" * 3000, "x." * 1500)
                for end in ("", "!", "\n"))  # fmt: skip


class PatternTimeout(RuntimeError):
    """A search ran out of time."""


def pattern_problem(pattern: str) -> str | None:
    """Why `pattern` cannot be used for `matches:`, or None."""
    import regex

    try:
        compiled = compile_pattern(pattern)
    except regex.error as error:
        return f"bad regular expression {pattern!r}: {error}"
    for probe in _PROBES:
        try:
            compiled.search(probe, timeout=_PROBE_TIMEOUT_SECONDS)
        except TimeoutError:
            return (
                f"regular expression {pattern!r} backtracks catastrophically (more than "
                f"{_PROBE_TIMEOUT_SECONDS * 1000:g} ms on {len(probe)} characters); avoid nested repetition like (a+)+"
            )
    return None


@functools.lru_cache(maxsize=512)
def compile_pattern(pattern: str) -> Any:
    """Case-insensitive, as every string comparison of conditions. Raises regex.error. (The library
    loads with the first route that has `matches:`, not with every worker.)"""
    import regex

    return regex.compile(pattern, regex.IGNORECASE | regex.VERSION0)


def search(pattern: str, text: str, timeout: float = MATCH_TIMEOUT_SECONDS) -> bool:
    """Whether `pattern` is found in (the first MAX_TEXT_CHARS of) `text`; raises PatternTimeout."""
    try:
        return compile_pattern(pattern).search(text[:MAX_TEXT_CHARS], timeout=timeout) is not None
    except TimeoutError:
        raise PatternTimeout(f"matches {pattern!r}: no answer within {timeout:g}s on {len(text)} characters") from None
