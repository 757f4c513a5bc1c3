# Runs one azd hook (deploy/<hook>.py) with the project's own interpreter, never the system
# python (which usually lacks the app's packages). Creates .venv when it is missing.
# usage: scripts/hook.ps1 HOOK [--dry-run] [--yes]
$ErrorActionPreference = 'Stop'
Set-Location (Join-Path $PSScriptRoot '..')
$hook = $args[0]
$python = if ($IsWindows -or $env:OS -eq 'Windows_NT') { '.venv/Scripts/python.exe' } else { '.venv/bin/python' }
if (-not (Test-Path $python)) {
    Write-Host "${hook}: no .venv here yet; creating it with the app's packages (requirements.txt)"
    $base = (Get-Command py, python3, python -ErrorAction SilentlyContinue | Select-Object -First 1)
    if (-not $base) { Write-Host "${hook}: Python 3.11+ is needed to create .venv"; exit 1 }
    & $base.Source -m venv .venv
    if ($LASTEXITCODE -eq 0) { & $python -m pip install --quiet --disable-pip-version-check -r requirements.txt }
    if ($LASTEXITCODE -ne 0) { Write-Host "${hook}: could not create .venv (see above); fix that and rerun"; exit 1 }
}
& $python -m deploy @args
exit $LASTEXITCODE
