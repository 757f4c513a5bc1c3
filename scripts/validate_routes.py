"""Check a routes file: prints every problem with its line and exits 1, or a summary and exits 0.

    python scripts/validate_routes.py [--routes FILE]

`${SETTING}` references are resolved against the current environment, so run it with the same
settings the app will have (e.g. after `azd env get-values`), or expect those to be reported.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from shared.problems import Problems
    from shared.routing.routes import RoutesError
    from shared.settings import Settings
    from shared.worker import load_routes

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
    # Checks too slow for a worker's cold start (e.g. a pipeline YAML through azure.ai.ml's load_job).
    problems, notes = Problems(str(path)), Problems(str(path))
    for route in table.routes:
        found = problems if route.enabled else notes
        found.context = f"route {route.name!r}" + ("" if route.enabled else " (disabled)")
        for action in route.actions:
            action.action.deep_check(found, action.line)
    if problems:
        print(f"{len(problems.items)} problem(s) in {path}:", file=sys.stderr)
        for problem in problems.lines():
            print(f"  {problem}", file=sys.stderr)
        return 1
    print(f"OK {table.summary()}")
    for route in table.routes:
        events = ", ".join(t.rsplit(".", 1)[-1] for t in route.event_types)
        if route.expect is not None:  # its actions run when what it expects does not happen
            events = f"{events} then " * bool(events) + f"expect {route.expect.describe()}"
        actions = ", ".join(a.kind for a in route.actions)
        state = "" if route.enabled else " (disabled)"
        print(f"  {route.name}{state}: {events} -> {actions}")
    for warning in [*table.warnings, *notes.lines()]:
        print(f"  note: {warning}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
