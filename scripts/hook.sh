#!/bin/sh
# Runs one azd hook (deploy/<hook>.py) with the project's own interpreter, never the system
# python3 (which usually lacks the app's packages). Creates .venv with scripts/setup_env.sh
# --deploy when it is missing. usage: scripts/hook.sh HOOK [--dry-run] [--yes]
set -eu
cd "$(dirname "$0")/.."
python=.venv/bin/python
if [ ! -x "$python" ]; then
  echo "$1: no .venv here yet; creating it (scripts/setup_env.sh --deploy)" >&2
  if ! scripts/setup_env.sh --deploy >&2; then
    echo "$1: could not create .venv (see above). Fix that, run scripts/setup_env.sh --deploy, then rerun." >&2
    exit 1
  fi
fi
exec "$python" -m deploy "$@"
