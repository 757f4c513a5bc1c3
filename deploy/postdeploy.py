"""postdeploy: the event subscriptions of the functions, with filters rendered from the routes file,
on the workspace's topic and on each optional source's; ours that no enabled route needs are removed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deploy.azcli import Cli
from deploy.common import REPO_ROOT, Env, ResourceId, deploy_group, setting
from deploy.sources import configured_sources, ensure_source_topic, grant_dead_letters
from deploy.topics import our_subscriptions

AML_EVENTS = "Microsoft.MachineLearningServices."  # the workspace topic's event types
# Errors Azure returns while the function app just deployed is still propagating.
ENDPOINT_NOT_READY = (
    "Destination endpoint not found",
    "validation handshake",
    "validate the provided endpoint",
    "EndpointValidation",
)


def postdeploy(cli: Cli, env: Env) -> None:
    from scripts import render_filters  # imports the app's route loader (PyYAML, Jinja2): the .venv's

    topic = env.topic()
    routes_file = REPO_ROOT / env.get("ROUTES_FILE", "routes.yaml")
    cli.say("rendering Event Grid filters from the routes file")
    filters = render_filters.render_file(routes_file)
    subscribe(cli, env, topic, filters, purpose="eventgrid-subscriptions")
    for source in configured_sources(env):
        source_topic, principal = ensure_source_topic(cli, env, source)
        grant_dead_letters(cli, env, source, principal)
        subscribe(cli, env, source_topic, filters, purpose=f"subscriptions-{source.key}", prefix=source.prefix)
    cli.say("Event Grid subscriptions are up to date")


def subscribe(
    cli: Cli, env: Env, topic: ResourceId, filters: Mapping[str, Any], *, purpose: str, prefix: str = AML_EVENTS
) -> None:
    """The subscriptions of the functions whose events start with ``prefix``, on ``topic``; then remove ours
    that no enabled route needs (incremental deployments never delete)."""
    from scripts import render_filters

    app_id = env.need("AZURE_FUNCTION_APP_ID", "run azd provision first")
    app_name = env.need("AZURE_FUNCTION_APP_NAME", "run azd provision first")
    parameters = {
        "systemTopicName": topic.name,
        "functionAppId": app_id,
        "deadLetterStorageAccountId": env.need("AZURE_STORAGE_ACCOUNT_ID", "run azd provision first"),
        "deadLetterContainerName": env.get("DEAD_LETTER_CONTAINER", "deadletter"),
        "maxDeliveryAttempts": int(setting(env, "EVENTGRID_MAX_DELIVERY_ATTEMPTS", 30)),
        "eventTimeToLiveInMinutes": int(setting(env, "EVENTGRID_EVENT_TTL_MINUTES", 1440)),
        "filters": filters,
    }
    if prefix != AML_EVENTS:
        parameters["eventTypePrefix"] = prefix
    deploy_group(
        cli,
        env,
        purpose,
        scope=topic,
        template="eventgrid-subscriptions",
        parameters=parameters,
        retry_on=ENDPOINT_NOT_READY,  # the new code may still be indexing its functions
        attempts=int(setting(env, "POSTDEPLOY_ATTEMPTS", 10)),
        delay=setting(env, "POSTDEPLOY_RETRY_SECONDS", 30),
    )
    functions = render_filters.load_function_event_types()
    wanted = {
        render_filters.subscription_name(app_name, function).lower()
        for function, types in functions.items()
        if types and types[0].startswith(prefix) and filters.get(function, {}).get("subscribe", True)
    }
    for subscription in our_subscriptions(cli, topic, app_id):
        if str(subscription.get("name", "")).lower() not in wanted:
            cli.say(f"removing event subscription {subscription['name']} (no enabled route takes its events)")
            cli.az("resource", "delete", "--ids", subscription["id"], change=True)
