#!/usr/bin/env bash
# Run the whole test suite: sets up .venv (with test tools) and Azurite on first use, then pytest.
# Extra arguments go to pytest, e.g. scripts/test.sh -k routes
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup_env.sh --dev
.venv/bin/ruff check .
.venv/bin/lint-imports --no-cache
.venv/bin/python -m pytest "$@"
