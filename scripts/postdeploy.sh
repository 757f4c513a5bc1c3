#!/bin/sh
# azd postdeploy hook (POSIX): create or update the Event Grid subscriptions now that the
# functions exist (an AzureFunction destination must already be deployed, azure-facts §7.2).
# Idempotent: re-running updates the same subscriptions and removes those no route needs.
#
# Reads the azd environment (main.bicep outputs). Optional settings:
#   EVENTGRID_MAX_DELIVERY_ATTEMPTS (1-30, default 30), EVENTGRID_EVENT_TTL_MINUTES (1-1440, default 1440),
#   PYTHON (default python3), POSTDEPLOY_ATTEMPTS (default 5), POSTDEPLOY_RETRY_SECONDS (default 30).
set -eu

cd "$(dirname "$0")/.."

for tool in az; do
  command -v "$tool" >/dev/null 2>&1 || { echo "postdeploy: '$tool' is required (see README, Deploy to Azure)" >&2; exit 1; }
done

# azd passes its environment to hooks; when run by hand, load it from azd.
if [ -z "${AZURE_FUNCTION_APP_ID:-}" ]; then
  command -v azd >/dev/null 2>&1 || { echo "postdeploy: run through azd, or export the azd env values" >&2; exit 1; }
  env_file=$(mktemp)
  azd env get-values > "$env_file"
  while IFS='=' read -r key value; do
    value=$(printf '%s' "$value" | sed 's/^"//; s/"$//')
    export "$key=$value"
  done < "$env_file"
  rm -f "$env_file"
fi

: "${AZURE_FUNCTION_APP_ID:?missing: run azd provision first}"
: "${AZURE_FUNCTION_APP_NAME:?}" "${AZURE_STORAGE_ACCOUNT_ID:?}" "${DEAD_LETTER_CONTAINER:?}"
: "${SYSTEM_TOPIC_NAME:?}" "${SYSTEM_TOPIC_RESOURCE_GROUP:?}" "${SYSTEM_TOPIC_SUBSCRIPTION_ID:?}"
PYTHON="${PYTHON:-python3}"
attempts="${POSTDEPLOY_ATTEMPTS:-5}"
retry_seconds="${POSTDEPLOY_RETRY_SECONDS:-30}"

filters_file=$(mktemp)
trap 'rm -f "$filters_file"' EXIT
echo "postdeploy: rendering Event Grid filters from the routes file"
"$PYTHON" scripts/render_filters.py --out "$filters_file"

# The app may still be indexing its functions right after deploy: retry "endpoint not found".
attempt=1
while :; do
  echo "postdeploy: deploying infra/subscriptions.bicep to $SYSTEM_TOPIC_NAME (attempt $attempt/$attempts)"
  if az deployment group create \
      --subscription "$SYSTEM_TOPIC_SUBSCRIPTION_ID" \
      --resource-group "$SYSTEM_TOPIC_RESOURCE_GROUP" \
      --name "eventgrid-subscriptions-$AZURE_FUNCTION_APP_NAME" \
      --template-file infra/subscriptions.bicep \
      --parameters \
        systemTopicName="$SYSTEM_TOPIC_NAME" \
        functionAppId="$AZURE_FUNCTION_APP_ID" \
        deadLetterStorageAccountId="$AZURE_STORAGE_ACCOUNT_ID" \
        deadLetterContainerName="$DEAD_LETTER_CONTAINER" \
        maxDeliveryAttempts="${EVENTGRID_MAX_DELIVERY_ATTEMPTS:-30}" \
        eventTimeToLiveInMinutes="${EVENTGRID_EVENT_TTL_MINUTES:-1440}" \
        filters=@"$filters_file" \
      --only-show-errors --output none; then
    break
  fi
  if [ "$attempt" -ge "$attempts" ]; then
    echo "postdeploy: giving up; re-run with 'azd hooks run postdeploy'" >&2
    exit 1
  fi
  attempt=$((attempt + 1))
  sleep "$retry_seconds"
done

# Incremental deployments never delete: remove subscriptions of functions no enabled route wants.
topic_id="/subscriptions/$SYSTEM_TOPIC_SUBSCRIPTION_ID/resourceGroups/$SYSTEM_TOPIC_RESOURCE_GROUP/providers/Microsoft.EventGrid/systemTopics/$SYSTEM_TOPIC_NAME"
for name in $("$PYTHON" scripts/render_filters.py --unsubscribed-names "$AZURE_FUNCTION_APP_NAME"); do
  if az resource show --ids "$topic_id/eventSubscriptions/$name" --only-show-errors --output none 2>/dev/null; then
    echo "postdeploy: removing $name (no enabled route takes its events)"
    az resource delete --ids "$topic_id/eventSubscriptions/$name" --only-show-errors --output none
  fi
done

echo "postdeploy: Event Grid subscriptions are up to date"
