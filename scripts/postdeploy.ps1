# azd postdeploy hook (pwsh); the logic is deploy/hooks.py. Options: --dry-run.
& (Join-Path $PSScriptRoot 'hook.ps1') postdeploy @args
exit $LASTEXITCODE
