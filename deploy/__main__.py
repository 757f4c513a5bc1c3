"""python -m deploy {preprovision,postprovision,postdeploy,teardown} [--dry-run] [--yes]

Never a traceback for a problem the user can fix: a missing package in the .venv, a missing
setting, a failed az call each end with one clear message and exit status 1.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deploy", description="azd hooks for aml-event-actions (docs/deploy.md)")
    parser.add_argument("hook", choices=["preprovision", "postprovision", "postdeploy", "teardown"])
    parser.add_argument("--dry-run", action="store_true", help="read Azure, change nothing: print the az commands")
    parser.add_argument("--yes", action="store_true", help="teardown: do not ask before removing")
    args = parser.parse_args(argv)
    prefix = f"{args.hook}:"
    try:
        from deploy.azcli import Cli, DeployError
        from deploy.common import Env
        from deploy.postdeploy import postdeploy
        from deploy.postprovision import postprovision
        from deploy.preprovision import preprovision
        from deploy.teardown import teardown

        hooks = {"preprovision": preprovision, "postprovision": postprovision, "postdeploy": postdeploy}
        cli = Cli(dry_run=args.dry_run)
        try:
            env = Env(cli)
            if args.hook == "teardown":
                teardown(cli, env, assume_yes=args.yes)
            else:
                hooks[args.hook](cli, env)
        except DeployError as error:
            print(f"{prefix} {error}", file=sys.stderr)
            return 1
    except ModuleNotFoundError as error:
        print(
            f"{prefix} the Python package {error.name!r} is missing from {sys.prefix}. "
            "Install the app's packages: scripts/setup_env.sh --deploy (Windows: see docs/deploy.md).",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        print(f"{prefix} interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # the hook's boundary: one line for azd's log, the traceback only on request
        if os.environ.get("DEPLOY_DEBUG"):
            raise
        print(f"{prefix} unexpected {type(error).__name__}: {error} (DEPLOY_DEBUG=1 shows where)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
