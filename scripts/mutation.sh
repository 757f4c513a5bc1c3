#!/usr/bin/env bash
# Mutation testing of the core modules, by hand (slow: minutes to an hour on two cores; docs/mutation.md).
# mutmut changes one thing at a time (an operator, a constant, a condition, a return value) in
# routing conditions, the ledger's decisions, event parsing and the gate, runs only the tests that
# cover the changed function, and lists the mutants no test noticed. One Azurite serves every run.
#   scripts/mutation.sh            run (resumes where a previous run stopped), then print the summary
#   scripts/mutation.sh results    list the surviving mutants;  .venv/bin/mutmut show NAME  shows one
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-run}" == "results" ]]; then
    exec .venv/bin/mutmut results
fi

conn_file=$(mktemp)
.venv/bin/python scripts/azurite.py >"$conn_file" &
azurite_pid=$!
trap 'kill "$azurite_pid" 2>/dev/null || true; wait "$azurite_pid" 2>/dev/null || true; rm -f "$conn_file"' EXIT
for _ in $(seq 1 300); do [[ -s "$conn_file" ]] && break; sleep 0.1; done
[[ -s "$conn_file" ]] || { echo "Azurite did not start" >&2; exit 1; }
AZURITE_CONNECTION_STRING=$(head -n 1 "$conn_file")
export AZURITE_CONNECTION_STRING

.venv/bin/mutmut run --max-children "${MUTATION_CHILDREN:-2}" || true  # survivors are a result, not an error
.venv/bin/mutmut export-cicd-stats
.venv/bin/python -c 'import json; s = json.load(open("mutants/mutmut-cicd-stats.json"))
print(", ".join(f"{k} {v}" for k, v in s.items()))'
