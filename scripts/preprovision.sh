#!/bin/sh
# azd preprovision hook (POSIX); the logic is deploy/preprovision.py. Options: --dry-run.
exec "$(dirname "$0")/hook.sh" preprovision "$@"
