"""Running `az` and `azd`: JSON in and out, clear errors, retries, and a dry run."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO


class DeployError(Exception):
    """A problem the user can act on; printed without a traceback."""


class AzError(DeployError):
    def __init__(self, command: Sequence[str], stderr: str) -> None:
        self.command = list(command)
        self.stderr = stderr
        detail = "\n".join(line for line in stderr.strip().splitlines()[-8:]) or "(no error output)"
        super().__init__(f"`{shlex.join(self.command[:4])} …` failed:\n{detail}")


class Cli:
    """Runs az/azd. With dry_run, commands that change Azure are printed instead of run;
    reads (show/list) still run so that the plan printed is the real one."""

    def __init__(
        self,
        *,
        dry_run: bool = False,
        out: TextIO = sys.stdout,
        sleep: Callable[[float], None] = time.sleep,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.dry_run = dry_run
        self.out = out
        self.sleep = sleep
        self.environ = dict(os.environ if environ is None else environ)

    def say(self, message: str) -> None:
        print(message, file=self.out, flush=True)

    def _binary(self, name: str) -> str:
        found = shutil.which(name, path=self.environ.get("PATH"))
        if found is None:
            raise DeployError(f"'{name}' is not on PATH: install it (see docs/deploy.md, Prerequisites)")
        return found

    def _run(self, tool: str, args: Sequence[str]) -> str:
        command = [self._binary(tool), *args]
        try:
            result = subprocess.run(
                command, capture_output=True, text=True, env=self.environ, timeout=3600, check=False
            )
        except OSError as error:
            raise DeployError(f"could not run {tool}: {error}") from error
        if result.returncode != 0:
            raise AzError([tool, *args], result.stderr or result.stdout)
        return result.stdout

    def az(self, *args: str, change: bool = False) -> Any:
        """`az ARGS --only-show-errors --output json`, parsed; None for empty output or a dry-run change."""
        full = [*args, "--only-show-errors", "--output", "json"]
        if change and self.dry_run:
            self.say("would run: az " + shlex.join(full))
            return None
        text = self._run("az", full).strip()
        try:
            return json.loads(text) if text else None
        except json.JSONDecodeError as error:
            raise DeployError(f"az {shlex.join(args[:3])} returned no JSON: {text[:200]!r}") from error

    def az_retrying(self, *args: str, transient: Sequence[str], attempts: int, delay: float) -> Any:
        """A change that Azure may refuse for a while (replication, a function not indexed yet):
        retried only when the error names one of the ``transient`` conditions."""
        for attempt in range(1, attempts + 1):
            try:
                return self.az(*args, change=True)
            except AzError as error:
                matched = next((t for t in transient if t.casefold() in error.stderr.casefold()), None)
                if matched is None or attempt == attempts:
                    raise
                self.say(f"  Azure says {matched!r} (not ready yet); retrying in {delay:g} s ({attempt}/{attempts})")
                self.sleep(delay)
        return None

    def azd_env_values(self) -> dict[str, str]:
        """`azd env get-values` as a dict ({} when azd is not installed)."""
        if shutil.which("azd", path=self.environ.get("PATH")) is None:
            return {}
        return parse_dotenv(self._run("azd", ["env", "get-values"]))

    def azd_env_set(self, key: str, value: str) -> None:
        if self.dry_run:
            self.say("would run: azd env set " + shlex.join([key, value]))
            return
        self._run("azd", ["env", "set", key, value])


def parse_dotenv(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if not sep or not key.strip() or key.lstrip().startswith("#"):
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1].replace('\\"', '"')
        values[key.strip()] = value
    return values


@contextmanager
def parameters_file(parameters: Mapping[str, Any]) -> Iterator[str]:
    """An ARM deployment parameters file for `--parameters @file` (objects and arrays survive as JSON)."""
    content = {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {name: {"value": value} for name, value in parameters.items()},
    }
    handle, path = tempfile.mkstemp(prefix="deploy-params-", suffix=".json")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            json.dump(content, file, indent=2)
        yield path
    finally:
        Path(path).unlink(missing_ok=True)
