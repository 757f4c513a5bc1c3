# azd preprovision hook (pwsh); the logic is deploy/preprovision.py. Options: --dry-run.
& (Join-Path $PSScriptRoot 'hook.ps1') preprovision @args
exit $LASTEXITCODE
