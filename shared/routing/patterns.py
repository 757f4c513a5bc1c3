"""Regular expressions from configuration (`matches:`) applied to untrusted text, in linear time.

An operator's pattern like `^(a+)+$` takes exponential time in a backtracking engine (Python's `re`)
against a crafted experiment name, and a backtracking engine's timeout is checked too rarely to bound
it. Patterns run on RE2 (google-re2), whose matching is linear in the text for every pattern it
accepts. What RE2 does not accept (backreferences, lookaround: the features that need backtracking)
is a validation problem, and the text searched is capped.
"""

from __future__ import annotations

import functools
from typing import Any

MAX_TEXT_CHARS = 64 * 1024  # what one `matches:` searches of a value
_MAX_PATTERN_MEMORY = 8 << 20  # RE2's own default, stated: a pattern needing more does not compile


def pattern_problem(pattern: str) -> str | None:
    """Why `pattern` cannot be used for `matches:`, or None."""
    import re2

    try:
        compile_pattern(pattern)
    except re2.error as error:
        reason = error.args[0].decode("utf-8", "replace") if error.args and isinstance(error.args[0], bytes) else error
        return (
            f"regular expression {pattern!r} cannot be used: {reason} (matching runs on RE2, in linear time: "
            "no backreferences or lookaround)"
        )
    return None


@functools.lru_cache(maxsize=512)
def compile_pattern(pattern: str) -> Any:
    """Case-insensitive, as every string comparison of conditions. Raises re2.error. (The library
    loads with the first route that has `matches:`, not with every worker.)"""
    import re2

    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False  # the problem is reported with the route's line instead
    options.max_mem = _MAX_PATTERN_MEMORY
    return re2.compile(pattern, options)


def search(pattern: str, text: str) -> bool:
    """Whether `pattern` is found in (the first MAX_TEXT_CHARS of) `text`."""
    return compile_pattern(pattern).search(text[:MAX_TEXT_CHARS]) is not None
