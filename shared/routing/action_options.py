"""The options every action takes, whatever its kind: `${SETTING}` references resolved from the app
settings, `timeout` and `retry`. What is left of the options goes to the kind's own Action class."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.problems import Problems
from shared.routing.durations import parse_duration

SETTING_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3
    backoff: float = 1.0  # seconds before the second attempt; doubles each time, with jitter
    max_backoff: float = 30.0



def substitute_settings(value: Any, environ: Mapping[str, str], problems: Problems, line: int, where: str) -> Any:
    """`${NAME}` -> the app setting NAME, everywhere in an action's options."""
    if isinstance(value, str):

        def setting(match: re.Match[str]) -> str:
            name = match[1]
            if name not in environ:
                problems.add(line, f"{where} uses ${{{name}}} but the app setting {name} is not set")
                return ""
            return environ[name]

        return SETTING_REFERENCE.sub(setting, value)
    if isinstance(value, Mapping):
        return {
            key: substitute_settings(item, environ, problems, line, f"{where}.{key}") for key, item in value.items()
        }
    if isinstance(value, list):
        return [substitute_settings(item, environ, problems, line, where) for item in value]
    return value


def pop_duration(options: dict[str, Any], key: str, problems: Problems, line: int, kind: str) -> float | None:
    if key not in options:
        return None
    try:
        return parse_duration(options.pop(key))
    except ValueError as error:
        problems.add(line, f"{kind}: {key}: {error}")
        return None


def parse_retry(spec: Any, problems: Problems, line: int, kind: str) -> RetryPolicy:
    if spec is None:
        return RetryPolicy()
    if not isinstance(spec, Mapping):
        problems.add(line, f"{kind}: retry must be a mapping like {{attempts: 3, backoff: 2s, max_backoff: 30s}}")
        return RetryPolicy()
    unknown = set(spec) - {"attempts", "backoff", "max_backoff"}
    if unknown:
        problems.add(line, f"{kind}: retry: unknown option(s) {', '.join(sorted(map(str, unknown)))}")
    attempts = spec.get("attempts", RetryPolicy.attempts)
    if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= 10:
        problems.add(line, f"{kind}: retry.attempts must be a whole number from 1 to 10, got {attempts!r}")
        attempts = RetryPolicy.attempts
    durations = {}
    for key in ("backoff", "max_backoff"):
        try:
            durations[key] = parse_duration(spec.get(key, getattr(RetryPolicy, key)))
        except ValueError as error:
            problems.add(line, f"{kind}: retry.{key}: {error}")
            durations[key] = getattr(RetryPolicy, key)
    return RetryPolicy(attempts, durations["backoff"], durations["max_backoff"])
