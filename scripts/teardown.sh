#!/bin/sh
# azd teardown hook (POSIX); the logic is deploy/hooks.py. Options: --dry-run, --yes.
exec "$(dirname "$0")/hook.sh" teardown "$@"
