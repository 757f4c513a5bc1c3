"""The benchmarks are run by hand (bench/run.py); these tests only keep them from rotting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench import run

ROOT = Path(__file__).resolve().parents[2]


def test_the_runner_parses_its_arguments() -> None:
    args = run.parse_args(["--only", "cold-start", "storm", "--quick"])
    assert args.only == ["cold-start", "storm"] and args.quick
    with pytest.raises(SystemExit):
        run.parse_args(["--only", "no-such-benchmark"])


@pytest.mark.slow
def test_every_benchmark_runs_with_tiny_counts() -> None:
    result = subprocess.run(
        [sys.executable, "bench/run.py", "--quick"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode in (0, 1), result.stderr[-3000:]  # 1: a target missed, likely with tiny counts
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    for number, name in enumerate(
        ("cold start", "first event", "per event", "fan-out", "storm", "memory", "expectations"), 1
    ):
        assert any(row.startswith(f"| {number} {name} |") for row in rows), f"no figures from benchmark {number}"
    assert "Machine: " in result.stdout and "figures in" in result.stdout
