"""Running scripts/*.py as a user runs them (`.venv/bin/python scripts/x.py` from the repository root),
importing this checkout's code whichever checkout the .venv's path file names."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_script(name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`scripts/<name>.py ARGS` with `env` (default: this process's environment)."""
    environ = dict(os.environ if env is None else env)
    environ["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / f"{name}.py"), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=environ,
        timeout=120,
    )


def replay(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_script("replay", *args, env=env)


def lines(result: subprocess.CompletedProcess[str]) -> list[dict]:
    """The JSON lines a script printed (`--json`)."""
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
