# azd postdeploy hook (Windows / pwsh): same steps as scripts/postdeploy.sh.
# Create or update the Event Grid subscriptions now that the functions exist (azure-facts §7.2).
# Idempotent: re-running updates the same subscriptions and removes those no route needs.
$ErrorActionPreference = 'Stop'
Set-Location (Join-Path $PSScriptRoot '..')

if (-not (Get-Command az -ErrorAction SilentlyContinue)) {
    Write-Error "postdeploy: 'az' is required (see README, Deploy to Azure)"
}

# azd passes its environment to hooks; when run by hand, load it from azd.
if (-not $env:AZURE_FUNCTION_APP_ID) {
    foreach ($line in (& azd env get-values)) {
        if ($line -match '^([^=]+)=(.*)$') {
            [Environment]::SetEnvironmentVariable($Matches[1], ($Matches[2] -replace '^"|"$'))
        }
    }
}

foreach ($name in 'AZURE_FUNCTION_APP_ID', 'AZURE_FUNCTION_APP_NAME', 'AZURE_STORAGE_ACCOUNT_ID', 'DEAD_LETTER_CONTAINER',
                  'SYSTEM_TOPIC_NAME', 'SYSTEM_TOPIC_RESOURCE_GROUP', 'SYSTEM_TOPIC_SUBSCRIPTION_ID') {
    if (-not [Environment]::GetEnvironmentVariable($name)) { Write-Error "postdeploy: $name is missing: run azd provision first" }
}
$python = if ($env:PYTHON) { $env:PYTHON } else { 'python' }
$attempts = if ($env:POSTDEPLOY_ATTEMPTS) { [int]$env:POSTDEPLOY_ATTEMPTS } else { 5 }
$retrySeconds = if ($env:POSTDEPLOY_RETRY_SECONDS) { [int]$env:POSTDEPLOY_RETRY_SECONDS } else { 30 }
$maxDeliveryAttempts = if ($env:EVENTGRID_MAX_DELIVERY_ATTEMPTS) { $env:EVENTGRID_MAX_DELIVERY_ATTEMPTS } else { '30' }
$eventTtlMinutes = if ($env:EVENTGRID_EVENT_TTL_MINUTES) { $env:EVENTGRID_EVENT_TTL_MINUTES } else { '1440' }

$filtersFile = New-TemporaryFile
try {
    Write-Host 'postdeploy: rendering Event Grid filters from the routes file'
    & $python scripts/render_filters.py --out $filtersFile.FullName
    if ($LASTEXITCODE -ne 0) { Write-Error 'postdeploy: render_filters.py failed' }

    # The app may still be indexing its functions right after deploy: retry "endpoint not found".
    for ($attempt = 1; ; $attempt++) {
        Write-Host "postdeploy: deploying infra/subscriptions.bicep to $env:SYSTEM_TOPIC_NAME (attempt $attempt/$attempts)"
        az deployment group create `
            --subscription $env:SYSTEM_TOPIC_SUBSCRIPTION_ID `
            --resource-group $env:SYSTEM_TOPIC_RESOURCE_GROUP `
            --name "eventgrid-subscriptions-$env:AZURE_FUNCTION_APP_NAME" `
            --template-file infra/subscriptions.bicep `
            --parameters `
                "systemTopicName=$env:SYSTEM_TOPIC_NAME" `
                "functionAppId=$env:AZURE_FUNCTION_APP_ID" `
                "deadLetterStorageAccountId=$env:AZURE_STORAGE_ACCOUNT_ID" `
                "deadLetterContainerName=$env:DEAD_LETTER_CONTAINER" `
                "maxDeliveryAttempts=$maxDeliveryAttempts" `
                "eventTimeToLiveInMinutes=$eventTtlMinutes" `
                "filters=@$($filtersFile.FullName)" `
            --only-show-errors --output none
        if ($LASTEXITCODE -eq 0) { break }
        if ($attempt -ge $attempts) { Write-Error "postdeploy: giving up; re-run with 'azd hooks run postdeploy'" }
        Start-Sleep -Seconds $retrySeconds
    }

    # Incremental deployments never delete: remove subscriptions of functions no enabled route wants.
    $topicId = "/subscriptions/$env:SYSTEM_TOPIC_SUBSCRIPTION_ID/resourceGroups/$env:SYSTEM_TOPIC_RESOURCE_GROUP" +
               "/providers/Microsoft.EventGrid/systemTopics/$env:SYSTEM_TOPIC_NAME"
    foreach ($name in (& $python scripts/render_filters.py --unsubscribed-names $env:AZURE_FUNCTION_APP_NAME)) {
        if (-not $name) { continue }
        az resource show --ids "$topicId/eventSubscriptions/$name" --only-show-errors --output none 2>$null
        if ($LASTEXITCODE -eq 0) {
            Write-Host "postdeploy: removing $name (no enabled route takes its events)"
            az resource delete --ids "$topicId/eventSubscriptions/$name" --only-show-errors --output none
        }
    }
    Write-Host 'postdeploy: Event Grid subscriptions are up to date'
}
finally {
    Remove-Item $filtersFile.FullName -ErrorAction SilentlyContinue
}
