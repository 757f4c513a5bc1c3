#!/bin/sh
# azd preprovision hook (POSIX); the logic is deploy/hooks.py. Options: --dry-run.
exec "$(dirname "$0")/hook.sh" preprovision "$@"
