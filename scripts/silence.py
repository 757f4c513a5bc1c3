"""Ad-hoc silences: quiet a route (or some of its events) for a while, without a redeploy.

    python scripts/silence.py add --route NAME [--when 'data.ExperimentName=exp-42'] --for 2h --reason "..."
    python scripts/silence.py list [--all]
    python scripts/silence.py remove ID

Silences live in the app's storage account (AzureWebJobsStorage; table SILENCE_TABLE) and every
worker honours them within SILENCE_CACHE_SECONDS (15 s). A silenced action is recorded in the ledger
as `skipped` with `silenced: <reason>`. `--route '*'` silences every route; several `--when` must all
hold; the route name is checked against ROUTES_FILE (routes.yaml).
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
            if problem := _unknown_route(args.route, settings.routes_file):
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


def _unknown_route(route: str, routes_file: Path) -> str | None:
    from shared.routing.routes import RoutesError
    from shared.worker import load_routes

    if route == "*":
        return None
    try:
        names = [known.name for known in load_routes(routes_file).routes]
    except RoutesError as error:
        return f"cannot check the route name: {error}"
    if route not in names:
        return f"no route {route!r} in {routes_file} (routes: {', '.join(names) or 'none'}; '*' for all)"
    return None


if __name__ == "__main__":
    sys.exit(main())
