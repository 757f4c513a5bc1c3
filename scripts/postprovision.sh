#!/bin/sh
# azd postprovision hook (POSIX); the logic is deploy/postprovision.py. Options: --dry-run.
exec "$(dirname "$0")/hook.sh" postprovision "$@"
