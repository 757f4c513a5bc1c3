"""Check a routes file: prints every problem with its line and exits 1, or a summary and exits 0.

    python scripts/validate_routes.py [--routes FILE] [--settings FILE]

`${SETTING}` references are resolved as `func start` resolves them: against the environment, then the
`Values` of local.settings.json (the environment wins). Run it with the settings the app will have
(e.g. after `azd env get-values`), or expect the missing ones to be reported.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

LOCAL_SETTINGS = Path(__file__).resolve().parent.parent / "local.settings.json"


def settings_environ(file: Path | None, default: Path = LOCAL_SETTINGS) -> tuple[dict[str, str], str]:
    """The settings the app would see locally, and where they came from: as `func start` does, the
    environment, then local.settings.json's `Values` for names the environment does not set."""
    path = file or default
    if file is None and not path.is_file():
        return dict(os.environ), "the environment only (no local.settings.json)"
    try:
        values = json.loads(path.read_text(encoding="utf-8")).get("Values") or {}
    except (OSError, ValueError, AttributeError) as error:
        raise ValueError(f"{path}: cannot read its Values: {getattr(error, 'strerror', None) or error}") from None
    if not isinstance(values, dict):
        raise ValueError(f"{path}: `Values` must be an object of NAME: value")
    local = {str(name): str(value) for name, value in values.items()}
    return {**local, **os.environ}, f"the environment, then {path.name} Values ({len(local)}; the environment wins)"


def main(argv: list[str] | None = None) -> int:
    from shared.events.blobs import DATASTORES_SETTING, parse_datastores
    from shared.problems import Problems
    from shared.routing.routes import RoutesError
    from shared.settings import Settings
    from shared.worker import load_routes

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--routes", help="routes file (default: the ROUTES_FILE setting, else routes.yaml)")
    parser.add_argument("--settings", metavar="FILE", help="local settings (default: local.settings.json, if any)")
    args = parser.parse_args(argv)
    try:
        environ, source = settings_environ(Path(args.settings) if args.settings else None)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 1
    path = Path(args.routes) if args.routes else Settings.from_environ(environ).routes_file
    try:
        table = load_routes(path, environ)
    except RoutesError as error:
        print(f"{len(error.problems)} problem(s) in {path}:", file=sys.stderr)
        for problem in error.problems:
            print(f"  {problem}", file=sys.stderr)
        if any("is not set" in problem for problem in error.problems):
            print(f"  (settings read: {source})", file=sys.stderr)
        return 1
    # The DATASTORES setting (blob events' datastores): the app logs a bad entry and ignores it.
    _, bad_datastores = parse_datastores(environ.get(DATASTORES_SETTING, ""))
    if bad_datastores:
        print(f"{len(bad_datastores)} problem(s) in the app settings ({source}):", file=sys.stderr)
        for problem in bad_datastores:
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
    print(f"  settings: {source}")
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
