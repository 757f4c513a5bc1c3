#!/bin/sh
# azd postprovision hook (POSIX); the logic is deploy/hooks.py. Options: --dry-run.
exec "$(dirname "$0")/hook.sh" postprovision "$@"
