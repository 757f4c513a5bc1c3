"""Ad-hoc silences: quiet a route (or some of its events) for a while, without a redeploy.

    python scripts/silence.py add --route NAME [--when 'data.ExperimentName=exp-42'] --for 2h --reason "..."
                                  [--routes FILE]
    python scripts/silence.py list [--all]
    python scripts/silence.py remove ID

Silences live in the app's storage account (AzureWebJobsStorage; table SILENCE_TABLE) and every
worker honours them within SILENCE_CACHE_SECONDS (15 s). A silenced action is recorded in the ledger
as `skipped` with `silenced: <reason>`. `--route '*'` silences every route; several `--when` must all
hold; the route name is checked against the routes file (--routes, else ROUTES_FILE, else routes.yaml),
and a `--when` path that none of the route's event types has is warned about (docs/fields.md).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from scripts.cli import duration_argument

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add", help="silence a route for a while")
    add.add_argument("--route", required=True, help="the route's name, or '*' for every route")
    add.add_argument("--when", action="append", default=[], metavar="PATH=VALUE",
                     help="only events where PATH equals VALUE: data.ExperimentName=exp-42 (repeatable)")  # fmt: skip
    add.add_argument("--for", dest="duration", required=True, type=duration_argument, metavar="DURATION",
                     help="how long, e.g. 30m, 2h, 1d")  # fmt: skip
    add.add_argument("--reason", required=True, help="why: shown in the ledger for every silenced action")
    add.add_argument("--routes", help="routes file (default: the ROUTES_FILE setting, else routes.yaml)")
    listing = commands.add_parser("list", help="the active silences")
    listing.add_argument("--all", action="store_true", help="include expired ones")
    remove = commands.add_parser("remove", help="end a silence now")
    remove.add_argument("id")
    args = parser.parse_args(argv)

    from azure.core.exceptions import AzureError

    from shared.noise.silences import SilenceStore
    from shared.platform.storage import StorageNotConfigured
    from shared.settings import current_settings

    settings = current_settings()
    store = SilenceStore(settings)
    try:
        if args.command == "add":
            routes_file = Path(args.routes) if args.routes else settings.routes_file
            if problem := _unknown_route(args.route, routes_file, args.when):
                print(problem, file=sys.stderr)
                return 2
            silence = store.add(args.route, args.when, args.duration.total_seconds(), args.reason, getpass.getuser())
            print(f"silence {silence.id} added: route {silence.route}: {silence.describe()}")
        elif args.command == "list":
            silences = store.list(include_expired=args.all)
            for silence in silences:
                print(f"{silence.id}  {silence.route}  {silence.describe()}  by {silence.created_by or '?'}")
            if not silences:
                print("no silences" if args.all else "no active silences")
        elif not store.remove(args.id):
            print(f"no silence {args.id}", file=sys.stderr)
            return 1
        else:
            print(f"silence {args.id} removed")
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    except (StorageNotConfigured, AzureError) as error:
        print(f"silences unavailable: {str(error).splitlines()[0]}", file=sys.stderr)
        return 1
    return 0


def _unknown_route(route: str, routes_file: Path, when: list[str]) -> str | None:
    """Why the silence cannot be added (no such route), or None; warns about `--when` paths no event
    of the route's types has (the silence would never match)."""
    from shared.events.fields import path_problem
    from shared.routing.routes import RoutesError
    from shared.worker import load_routes

    try:
        routes = load_routes(routes_file).routes
    except RoutesError as error:
        return None if route == "*" else f"cannot check the route name: {error}"
    names = [known.name for known in routes]
    if route != "*" and route not in names:
        return f"no route {route!r} in {routes_file} (routes: {', '.join(names) or 'none'}; '*' for all)"
    event_types = tuple(dict.fromkeys(t for known in routes if route in ("*", known.name) for t in known.event_types))
    for text in when:
        if problem := path_problem(text.partition("=")[0].strip(), event_types):
            print(f"warning: --when {problem}", file=sys.stderr)
    return None


if __name__ == "__main__":
    sys.exit(main())
