#!/usr/bin/env bash
# Quick start: run the app locally on embedded defaults and watch Azure ML sample events become actions.
#   - creates .venv and installs Azurite (first run only)
#   - starts Azurite (in memory) for the action ledger
#   - replays the bundled sample events through the real functions and the shipped routes.yaml
#   - replays them again: Event Grid delivers at least once, and nothing is done twice
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup_env.sh

conn_file=$(mktemp)
.venv/bin/python scripts/azurite.py >"$conn_file" &
azurite_pid=$!
trap 'kill "$azurite_pid" 2>/dev/null; wait "$azurite_pid" 2>/dev/null; rm -f "$conn_file"' EXIT
for _ in $(seq 1 300); do [[ -s "$conn_file" ]] && break; sleep 0.1; done
AzureWebJobsStorage=$(head -n 1 "$conn_file")
export AzureWebJobsStorage

samples=(tests/events/eventgrid tests/events/cloudevents tests/events/quirks)
echo
echo "== Replaying ${#samples[@]} folders of sample events through function_app.py with routes.yaml"
.venv/bin/python scripts/replay.py "${samples[@]}"
echo
echo "== The same events delivered again (Event Grid delivers at least once): every action is skipped"
.venv/bin/python scripts/replay.py "${samples[@]}" | tail -n 1
if compgen -G "outbox/*.eml" >/dev/null; then
  echo
  echo "== Emails written to the local outbox (open them with any mail client):"
  ls -1 outbox/*.eml
fi
