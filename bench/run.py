"""Benchmarks of the function app, each against its baseline from the same run.

    python bench/run.py [--only NAME ...] [--quick]

Prints the machine, then one Markdown table row per figure: the app's figure, its baseline, the
ratio, the target and whether it was met. Exit status 1 when a target was missed. --quick uses tiny
counts (a smoke test that the benchmarks still run; its figures mean little).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import cold_start, expectations, fan_out, first_event, memory, per_event, storm  # noqa: E402
from bench.support import Figure, Lab  # noqa: E402
from bench.worker import log_like_the_host  # noqa: E402

BENCHMARKS = {
    "cold-start": cold_start,
    "first-event": first_event,
    "per-event": per_event,
    "fan-out": fan_out,
    "storm": storm,
    "memory": memory,
    "expectations": expectations,
}
PACKAGES = (
    "azure-functions",
    "azure-data-tables",
    "azure-core",
    "azure-identity",
    "msal",
    "httpx",
    "jinja2",
    "pyyaml",
    "azure-ai-ml",
)
HEADER = ["benchmark", "measure", "app", "baseline", "ratio", "target", "met", "note"]


def machine() -> str:
    versions = []
    for package in PACKAGES:
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{package} (not installed)")
    azurite = ROOT / "node_modules" / "azurite" / "package.json"
    if azurite.exists():
        import json

        versions.append(f"Azurite {json.loads(azurite.read_text())['version']}")
    return (
        f"{os.cpu_count()} cores, {platform.machine()} {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}; " + ", ".join(versions)
    )


def markdown_row(cells: list[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), metavar="NAME",
                        help=f"run only these ({', '.join(BENCHMARKS)})")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="tiny counts: checks that the benchmarks run")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    log_like_the_host()
    print(f"Machine: {machine()}\n", flush=True)
    print(markdown_row(HEADER))
    print(markdown_row(["---"] * len(HEADER)), flush=True)
    lab = Lab(quick=args.quick)
    figures: list[Figure] = []
    started = time.monotonic()
    try:
        for name in args.only or BENCHMARKS:
            for figure in BENCHMARKS[name].run(lab):
                figures.append(figure)
                print(markdown_row(figure.cells()), flush=True)
    finally:
        lab.close()
    missed = [figure for figure in figures if figure.met is False]
    print(f"\n{len(figures)} figures in {time.monotonic() - started:.0f} s; {len(missed)} targets missed")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
