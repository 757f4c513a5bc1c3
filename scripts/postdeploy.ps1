# azd postdeploy hook (pwsh); the logic is deploy/postdeploy.py. Options: --dry-run.
& (Join-Path $PSScriptRoot 'hook.ps1') postdeploy @args
exit $LASTEXITCODE
