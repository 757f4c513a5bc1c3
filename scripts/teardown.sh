#!/bin/sh
# azd teardown hook (POSIX); the logic is deploy/teardown.py. Options: --dry-run, --yes.
exec "$(dirname "$0")/hook.sh" teardown "$@"
