# azd teardown hook (pwsh); the logic is deploy/teardown.py. Options: --dry-run, --yes.
& (Join-Path $PSScriptRoot 'hook.ps1') teardown @args
exit $LASTEXITCODE
