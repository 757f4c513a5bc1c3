#!/bin/sh
# azd postdeploy hook (POSIX); the logic is deploy/postdeploy.py. Options: --dry-run.
exec "$(dirname "$0")/hook.sh" postdeploy "$@"
