"""Check a routes file: prints every problem with its line and exits 1, or a summary and exits 0.

    python scripts/validate_routes.py [--routes FILE]

`${SETTING}` references are resolved against the current environment, so run it with the same
settings the app will have (e.g. after `azd env get-values`), or expect those to be reported.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv: list[str] | None = None) -> int:
    from shared.routes import RoutesError, load_routes
    from shared.settings import Settings

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--routes", help="routes file (default: the ROUTES_FILE setting, else routes.yaml)")
    args = parser.parse_args(argv)
    path = Path(args.routes) if args.routes else Settings.from_environ().routes_file
    try:
        table = load_routes(path)
    except RoutesError as error:
        print(f"{len(error.problems)} problem(s) in {path}:", file=sys.stderr)
        for problem in error.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    print(f"OK {table.summary()}")
    for route in table.routes:
        events = ", ".join(t.rsplit(".", 1)[-1] for t in route.event_types)
        actions = ", ".join(a.kind for a in route.actions)
        state = "" if route.enabled else " (disabled)"
        print(f"  {route.name}{state}: {events} -> {actions}")
    for warning in table.warnings:
        print(f"  note: {warning}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
