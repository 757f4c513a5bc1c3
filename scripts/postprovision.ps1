# azd postprovision hook (pwsh); the logic is deploy/hooks.py. Options: --dry-run.
& (Join-Path $PSScriptRoot 'hook.ps1') postprovision @args
exit $LASTEXITCODE
