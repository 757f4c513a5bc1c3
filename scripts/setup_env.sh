#!/usr/bin/env bash
# Create .venv with the app's packages (and the test tools with --dev) and install Azurite with npm.
# --deploy: the app's packages only, no npm (what the azd hooks need). Idempotent: re-running only
# installs what changed. Used by quickstart.sh, test.sh, .ci/run and scripts/hook.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

requirements=requirements.txt
[[ "${1:-}" == "--dev" ]] && requirements=requirements-dev.txt
deploy_only=false
[[ "${1:-}" == "--deploy" ]] && deploy_only=true

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "Python 3.11 or newer is needed (found: $("$PYTHON" --version 2>&1))." >&2
  exit 1
fi
$deploy_only || command -v npm >/dev/null || { echo "Node.js and npm are needed for Azurite (the storage emulator)." >&2; exit 1; }

[[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
# `.venv/bin/python scripts/x.py` imports the app's packages (shared, handlers, scripts) from the
# checkout that owns .venv: this .pth puts that checkout on the path, as an editable install would.
site_packages=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
checkout=$(cd "$(readlink -f .venv)/.." && pwd)
[[ "$(cat "$site_packages/aml_events.pth" 2>/dev/null)" == "$checkout" ]] || echo "$checkout" >"$site_packages/aml_events.pth"
stamp=".venv/.installed-$(cat requirements.txt "$requirements" | sha256sum | cut -c1-16)"
if [[ ! -f "$stamp" ]]; then
  echo "Installing Python packages from $requirements ..."
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$requirements"
  touch "$stamp"
fi
if [[ "$requirements" == requirements-dev.txt ]]; then
  # checkov (the Bicep static analyser used by tests/infra) pins many packages: it gets a venv of its own.
  tools_stamp=".venv-tools/.installed-$(sha256sum tests/infra/requirements-checkov.txt | cut -c1-16)"
  if [[ ! -f "$tools_stamp" ]]; then
    echo "Installing checkov into .venv-tools ..."
    [[ -x .venv-tools/bin/python ]] || "$PYTHON" -m venv .venv-tools
    .venv-tools/bin/python -m pip install --quiet --disable-pip-version-check -r tests/infra/requirements-checkov.txt
    touch "$tools_stamp"
  fi
fi
if ! $deploy_only && [[ ! -x node_modules/.bin/azurite || ! -f node_modules/adaptivecards/package.json ]]; then
  echo "Installing Azurite and the Adaptive Cards renderer (npm) ..."
  npm ci --no-audit --no-fund --loglevel=error
fi
