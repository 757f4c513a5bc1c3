# azd postprovision hook (pwsh); the logic is deploy/postprovision.py. Options: --dry-run.
& (Join-Path $PSScriptRoot 'hook.ps1') postprovision @args
exit $LASTEXITCODE
