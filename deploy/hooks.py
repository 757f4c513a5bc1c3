"""The four steps: preprovision, postprovision, postdeploy and teardown (see the package docstring)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy.azcli import AzError, Cli, DeployError, parameters_file

REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = REPO_ROOT / "infra" / "hooks"
PROJECT = "amlevents"  # prefixes deployment names and tags, so other projects' records are never ours
TOPIC_TYPE = "Microsoft.MachineLearningServices.Workspaces"
AML_EVENTS = "Microsoft.MachineLearningServices."  # the workspace topic's event types
MAX_DEPLOYMENT_NAME = 64

# Errors Azure returns while what we just created is still propagating.
ENDPOINT_NOT_READY = (
    "Destination endpoint not found",
    "validation handshake",
    "validate the provided endpoint",
    "EndpointValidation",
)
ROLE_NOT_REPLICATED = ("RoleDefinitionDoesNotExist", "PrincipalNotFound")


@dataclass(frozen=True)
class ResourceId:
    subscription: str
    resource_group: str
    name: str
    value: str

    @classmethod
    def parse(cls, value: str, setting: str, provider_type: str | None = None) -> ResourceId:
        parts = value.strip().strip("/").split("/")
        ok = len(parts) >= 8 and parts[0].lower() == "subscriptions" and parts[2].lower() == "resourcegroups"
        if ok and provider_type:
            ok = "/".join(parts[5:7]).lower() == provider_type.lower() and len(parts) == 8
        if not ok:
            shape = f"/subscriptions/<id>/resourceGroups/<group>/providers/{provider_type or '<type>'}/<name>"
            raise DeployError(f"{setting} is not a resource id like {shape}: {value!r}")
        return cls(parts[1], parts[3], parts[-1], "/" + "/".join(parts))


def deployment_name(environment: str, purpose: str) -> str:
    """Unique per azd environment (several environments may deploy into one shared resource group)."""
    name = f"{PROJECT}-{environment}-{purpose}"
    if len(name) <= MAX_DEPLOYMENT_NAME:
        return name
    digest = hashlib.sha256(environment.encode()).hexdigest()[:8]
    keep = MAX_DEPLOYMENT_NAME - len(PROJECT) - len(purpose) - len(digest) - 3
    return f"{PROJECT}-{environment[:keep]}{digest}-{purpose}"


def env_tag(environment: str) -> str:
    """Tag put on the system topic: value 'created' or 'adopted' (tags on a shared topic are per environment)."""
    return f"{PROJECT}-{environment}"


class Env:
    """The azd environment: the process environment (azd injects it into hooks), completed with
    `azd env get-values` for values a hook set earlier in the same `azd up`, or when run by hand."""

    def __init__(self, cli: Cli) -> None:
        self.cli = cli
        self.values = {**cli.azd_env_values(), **{k: v for k, v in cli.environ.items() if v}}

    def get(self, key: str, default: str = "") -> str:
        return self.values.get(key, default).strip()

    def need(self, key: str, hint: str) -> str:
        value = self.get(key)
        if not value:
            raise DeployError(f"{key} is not set: {hint}")
        return value

    def flag(self, key: str) -> bool:
        return self.get(key).lower() in ("1", "true", "yes")

    def set(self, key: str, value: str) -> None:
        self.cli.azd_env_set(key, value)
        self.values[key] = value

    @property
    def name(self) -> str:
        return self.need("AZURE_ENV_NAME", "run through azd (azd up / azd hooks run …)")

    def workspace(self) -> ResourceId:
        return ResourceId.parse(
            self.need("AZURE_ML_WORKSPACE_ID", "azd env set AZURE_ML_WORKSPACE_ID /subscriptions/…/workspaces/<name>"),
            "AZURE_ML_WORKSPACE_ID",
            "Microsoft.MachineLearningServices/workspaces",
        )

    def topic(self) -> ResourceId:
        hint = "run the preprovision hook first (azd provision, or azd hooks run preprovision)"
        return ResourceId.parse(
            f"/subscriptions/{self.need('SYSTEM_TOPIC_SUBSCRIPTION_ID', hint)}"
            f"/resourceGroups/{self.need('SYSTEM_TOPIC_RESOURCE_GROUP', hint)}"
            f"/providers/Microsoft.EventGrid/systemTopics/{self.need('SYSTEM_TOPIC_NAME', hint)}",
            "SYSTEM_TOPIC_*",
        )

    def acs(self) -> ResourceId | None:
        value = self.get("ACS_RESOURCE_ID")
        if not value:
            return None
        return ResourceId.parse(value, "ACS_RESOURCE_ID", "Microsoft.Communication/communicationServices")


def setting(env: Env, key: str, default: int) -> float:
    raw = env.get(key)
    try:
        return float(raw) if raw else default
    except ValueError as error:
        raise DeployError(f"{key} must be a number, not {raw!r}") from error


def deploy_group(
    cli: Cli,
    env: Env,
    purpose: str,
    *,
    scope: ResourceId,
    parameters: Mapping[str, Any],
    retry_on: tuple[str, ...] = (),
    attempts: int = 1,
    delay: float = 0,
    template: str | None = None,
) -> dict[str, Any]:
    """`az deployment group create` of infra/hooks/<purpose>.bicep (or <template>.bicep, for a template
    deployed once per source) into the resource group of ``scope``, named for the environment and purpose
    (teardown finds it by that name); returns its outputs."""
    name = deployment_name(env.name, purpose)
    template = template or purpose
    cli.say(f"deploying infra/hooks/{template}.bicep to {scope.resource_group} as {name}")
    with parameters_file(parameters) as path:
        if cli.dry_run:
            cli.say(f"  parameters: {json.dumps(dict(parameters), sort_keys=True)}")
        args = (
            "deployment", "group", "create",
            "--subscription", scope.subscription,
            "--resource-group", scope.resource_group,
            "--name", name,
            "--template-file", str(TEMPLATES / f"{template}.bicep"),
            "--parameters", f"@{path}",
        )  # fmt: skip
        result = cli.az_retrying(*args, transient=retry_on, attempts=attempts, delay=delay)
    outputs = ((result or {}).get("properties") or {}).get("outputs") or {}
    return {key: value.get("value") for key, value in outputs.items()}


# ---- preprovision --------------------------------------------------------------------------------


def ensure_event_grid_registered(cli: Cli, subscriptions: list[str]) -> None:
    """Event Grid reads the function's key with its own service principal in the app's subscription,
    which needs the provider registered there even when the workspace (and topic) are elsewhere."""
    for subscription in dict.fromkeys(subscriptions):
        provider = cli.az("provider", "show", "--namespace", "Microsoft.EventGrid", "--subscription", subscription)
        if (provider or {}).get("registrationState") == "Registered":
            continue
        cli.say(f"registering the Microsoft.EventGrid resource provider in subscription {subscription}")
        cli.az(
            "provider", "register", "--namespace", "Microsoft.EventGrid", "--subscription", subscription, "--wait",
            change=True,
        )  # fmt: skip


def find_system_topic(cli: Cli, workspace: ResourceId) -> dict[str, Any] | None:
    """The workspace's system topic, wherever it is in the workspace's subscription (only one may exist)."""
    return find_topic_of(cli, workspace.subscription, workspace.value)


def find_topic_of(cli: Cli, subscription: str, source_id: str) -> dict[str, Any] | None:
    """The system topic whose source is ``source_id``, wherever it is in ``subscription`` (one per source)."""
    topics = cli.az("eventgrid", "system-topic", "list", "--subscription", subscription) or []
    for topic in topics:
        source = str(topic.get("source") or (topic.get("properties") or {}).get("source") or "")
        if source.strip("/").lower() == source_id.strip("/").lower():
            return topic
    return None


def topic_identity(existing: Mapping[str, Any] | None) -> dict[str, Any]:
    """System-assigned identity (dead-lettering uses it), keeping any user-assigned ones an adopted topic has."""
    identity = (existing or {}).get("identity") or {}
    user_assigned = identity.get("userAssignedIdentities") or {}
    if user_assigned:
        return {"type": "SystemAssigned, UserAssigned", "userAssignedIdentities": {k: {} for k in user_assigned}}
    return {"type": "SystemAssigned"}


def purge_deleted_key_vault(cli: Cli, env: Env, subscription: str) -> None:
    """`azd down` without --purge leaves the vault soft-deleted under its name for 7 days; the same
    environment would then fail to create it. Purge only the vault this environment made before."""
    vault = env.get("AZURE_KEY_VAULT_NAME")
    if not vault:
        return
    deleted = cli.az("keyvault", "list-deleted", "--subscription", subscription, "--resource-type", "vault") or []
    for entry in deleted:
        if str(entry.get("name", "")).lower() == vault.lower():
            location = (entry.get("properties") or {}).get("location") or env.get("AZURE_LOCATION")
            cli.say(f"purging the soft-deleted Key Vault {vault} this environment created (azd down without --purge)")
            cli.az(
                "keyvault", "purge", "--name", vault, "--location", location, "--subscription", subscription,
                change=True,
            )  # fmt: skip


def preprovision(cli: Cli, env: Env) -> None:
    environment = env.name
    workspace = env.workspace()
    app_subscription = env.need(
        "AZURE_SUBSCRIPTION_ID",
        "`azd up` asks for it before this hook; with `azd provision` on a new environment, "
        "run `azd env set AZURE_SUBSCRIPTION_ID <id>` (and AZURE_LOCATION) first",
    )
    existing_acs = env.get("EXISTING_ACS_RESOURCE_ID")
    if existing_acs:
        ResourceId.parse(existing_acs, "EXISTING_ACS_RESOURCE_ID", "Microsoft.Communication/communicationServices")
        env.need("EXISTING_EMAIL_SENDER", "with EXISTING_ACS_RESOURCE_ID, give the sender address (docs/deploy.md)")

    try:
        found = cli.az("resource", "show", "--ids", workspace.value) or {}
    except AzError as error:
        message = f"cannot read the workspace {workspace.value} (wrong id, or no access):\n{error.stderr.strip()}"
        raise DeployError(message) from None
    workspace_location = found.get("location")
    if not workspace_location:
        raise DeployError(f"Azure returned no location for the workspace {workspace.value}")

    ensure_event_grid_registered(cli, [app_subscription, workspace.subscription])
    purge_deleted_key_vault(cli, env, app_subscription)

    existing = find_system_topic(cli, workspace)
    tag = env_tag(environment)
    if existing is None:
        name = f"evgt-{workspace.name}".replace("_", "-")[:128]  # topic names: letters, digits, hyphens
        topic = ResourceId.parse(
            f"/subscriptions/{workspace.subscription}/resourceGroups/{workspace.resource_group}"
            f"/providers/Microsoft.EventGrid/systemTopics/{name}",
            "system topic",
        )
        tags, location, adopted = {tag: "created"}, workspace_location, False
        cli.say(f"the workspace has no system topic: creating {topic.name} in {topic.resource_group}")
    else:
        topic = ResourceId.parse(existing["id"], "system topic")
        old_tags = existing.get("tags") or {}
        adopted = old_tags.get(tag) != "created"
        tags = {**old_tags, tag: "adopted" if adopted else "created"}  # merged: the owner's tags stay
        location = existing.get("location") or workspace_location
        cli.say(f"using the workspace's system topic {topic.name} in {topic.resource_group}" + (" (adopted)" * adopted))

    outputs = deploy_group(
        cli,
        env,
        "system-topic",
        scope=topic,
        parameters={
            "name": topic.name,
            "location": location,
            "sourceId": workspace.value,
            "tags": tags,
            "identity": topic_identity(existing),
            "adopted": adopted,
        },
    )
    env.set("SYSTEM_TOPIC_NAME", topic.name)
    env.set("SYSTEM_TOPIC_RESOURCE_GROUP", topic.resource_group)
    env.set("SYSTEM_TOPIC_SUBSCRIPTION_ID", topic.subscription)
    env.set("SYSTEM_TOPIC_PRINCIPAL_ID", str(outputs.get("principalId") or "dry-run"))
    if existing_acs:
        acs = cli.az("resource", "show", "--ids", existing_acs) or {}
        env.set("EXISTING_ACS_ENDPOINT", "https://" + str((acs.get("properties") or {}).get("hostName", "")))


# ---- postprovision -------------------------------------------------------------------------------


def refresh_key_vault_references(cli: Cli, env: Env) -> None:
    """References resolve at app start, maybe before the Secrets User role propagated; refresh them."""
    app_id = env.need("AZURE_FUNCTION_APP_ID", "run azd provision first")
    base = f"{app_id}/config/configreferences/appsettings"
    attempts = int(setting(env, "KEYVAULT_REFRESH_ATTEMPTS", 6))
    delay = setting(env, "DEPLOY_RETRY_SECONDS", 20)
    unresolved: list[str] = []
    for attempt in range(1, attempts + 1):
        cli.say("refreshing the app's Key Vault references")
        cli.az("rest", "--method", "post", "--url", f"{base}/refresh?api-version=2022-03-01", change=True)
        if cli.dry_run:
            return
        status = cli.az("rest", "--method", "get", "--url", f"{base}?api-version=2022-03-01") or {}
        unresolved = [
            f"{item.get('name')} ({(item.get('properties') or {}).get('status')})"
            for item in status.get("value", [])
            if (item.get("properties") or {}).get("status") != "Resolved"
        ]
        if not unresolved:
            return
        if attempt < attempts:
            cli.say(f"  not resolved yet: {', '.join(unresolved)}; retrying in {delay:g} s")
            cli.sleep(delay)
    cli.say(
        "WARNING: Key Vault references still unresolved: " + ", ".join(unresolved) + ". The app treats them as "
        "unset (and says so) until they resolve; rerun `azd hooks run postprovision` in a few minutes."
    )


def postprovision(cli: Cli, env: Env) -> None:
    environment = env.name
    workspace = env.workspace()
    principal = env.need("APP_PRINCIPAL_ID", "run azd provision first (main.bicep output)")
    # main.bicep grants the topic identity its dead-letter role only when preprovision gave its id.
    env.need("SYSTEM_TOPIC_PRINCIPAL_ID", "the preprovision hook did not run: run azd provision again")
    attempts = int(setting(env, "DEPLOY_ATTEMPTS", 6))
    delay = setting(env, "DEPLOY_RETRY_SECONDS", 20)

    deploy_group(
        cli,
        env,
        "workspace-access",
        scope=workspace,
        parameters={"workspaceName": workspace.name, "appIdentityPrincipalId": principal},
        retry_on=ROLE_NOT_REPLICATED,
        attempts=attempts,
        delay=delay,
    )

    acs = env.acs()
    if acs is not None:
        # The custom role and its assignment are two deployments: a new role definition can take a
        # while to replicate, and the assignment is retried until it does.
        role = deploy_group(cli, env, "acs-sender-role", scope=acs, parameters={})
        deploy_group(
            cli,
            env,
            "acs-sender-assignment",
            scope=acs,
            parameters={
                "communicationServiceName": acs.name,
                "roleDefinitionId": role.get("roleDefinitionId") or "dry-run",
                "appIdentityPrincipalId": principal,
            },
            retry_on=ROLE_NOT_REPLICATED,
            attempts=attempts,
            delay=delay,
        )

    if env.flag("ASSIGN_ML_POLICIES"):
        deploy_group(
            cli,
            env,
            "ml-policies",
            scope=workspace,
            parameters={"workspaceName": workspace.name, "environmentName": environment},
        )

    refresh_key_vault_references(cli, env)


# ---- postdeploy ----------------------------------------------------------------------------------


def our_subscriptions(cli: Cli, topic: ResourceId, app_id: str) -> list[dict[str, Any]]:
    """Event subscriptions on the topic that deliver to this function app (and so are ours)."""
    prefix = app_id.rstrip("/").lower() + "/functions/"
    return [s for s in _topic_subscriptions(cli, topic) if _destination(s).lower().startswith(prefix)]


def _destination(subscription: Mapping[str, Any]) -> str:
    destination = subscription.get("destination") or (subscription.get("properties") or {}).get("destination") or {}
    return str(destination.get("resourceId") or (destination.get("properties") or {}).get("resourceId") or "")


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


# ---- the optional sources: storage accounts, policy states, resource events (docs/event-sources.md) --


@dataclass(frozen=True)
class Source:
    """A system topic beyond the workspace's, and where a new one goes."""

    key: str  # in deployment names: topic-<key>, subscriptions-<key>, deadletter-<key>
    source_id: str
    topic_type: str
    prefix: str  # the event types it emits start with this (shared/functions.json)
    subscription: str  # where the topic is looked for, and a new one created …
    resource_group: str  # … in this resource group
    topic_name: str  # the name of a new topic
    location: str  # "" : the source's own region (a storage account)


def configured_sources(env: Env) -> list[Source]:
    """DATA_STORAGE_ACCOUNT_IDS, POLICY_EVENTS_SUBSCRIPTION_ID and RESOURCE_EVENTS_SCOPE, as sources."""
    found = []
    for value in re.split(r"[,\s]+", env.get("DATA_STORAGE_ACCOUNT_IDS")):
        if value:
            account = ResourceId.parse(value, "DATA_STORAGE_ACCOUNT_IDS", "Microsoft.Storage/storageAccounts")
            found.append(Source(
                f"data-{account.name}", account.value, "Microsoft.Storage.StorageAccounts", "Microsoft.Storage.",
                account.subscription, account.resource_group, f"evgt-{account.name}", "",
            ))  # fmt: skip
    policy = env.get("POLICY_EVENTS_SUBSCRIPTION_ID")
    if policy:
        if not re.fullmatch(r"[0-9a-fA-F-]{36}", policy):
            raise DeployError(f"POLICY_EVENTS_SUBSCRIPTION_ID is not a subscription id: {policy!r}")
        group = _global_topic_group(env, policy, "POLICY_EVENTS_SUBSCRIPTION_ID")
        found.append(Source(
            "policy", f"/subscriptions/{policy}", "Microsoft.PolicyInsights.PolicyStates", "Microsoft.PolicyInsights.",
            policy, group, f"evgt-policy-{policy[:8]}", "global",
        ))  # fmt: skip
    scope = env.get("RESOURCE_EVENTS_SCOPE").rstrip("/")
    if scope:
        match = re.fullmatch(r"/subscriptions/([0-9a-fA-F-]{36})(?:/resourceGroups/([^/]+))?", scope, re.IGNORECASE)
        if not match:
            raise DeployError(
                "RESOURCE_EVENTS_SCOPE is not /subscriptions/<id> or /subscriptions/<id>/resourceGroups/<group>: "
                f"{scope!r}"
            )
        subscription, group = match[1], match[2]
        kind = "ResourceGroups" if group else "Subscriptions"
        home = group or _global_topic_group(env, subscription, "RESOURCE_EVENTS_SCOPE")
        found.append(Source(
            "resources", scope, f"Microsoft.Resources.{kind}", "Microsoft.Resources.", subscription, home,
            f"evgt-resources-{group or subscription[:8]}"[:128], "global",
        ))  # fmt: skip
    return found


def _global_topic_group(env: Env, subscription: str, key: str) -> str:
    """A subscription-wide topic lives in some resource group of that subscription: the workspace's, or
    SOURCE_TOPICS_RESOURCE_GROUP."""
    group = env.get("SOURCE_TOPICS_RESOURCE_GROUP")
    if group:
        return group
    workspace = env.workspace()
    if workspace.subscription.lower() == subscription.lower():
        return workspace.resource_group
    raise DeployError(
        f"{key} names subscription {subscription}, not the workspace's: set SOURCE_TOPICS_RESOURCE_GROUP to a "
        "resource group of that subscription for its system topic"
    )


def ensure_source_topic(cli: Cli, env: Env, source: Source) -> tuple[ResourceId, str]:
    """The source's system topic, created or adopted as the workspace's is (tags merged, identities kept);
    (the topic, its identity's principal id)."""
    existing = find_topic_of(cli, source.subscription, source.source_id)
    tag = env_tag(env.name)
    if existing is None:
        topic = ResourceId.parse(
            f"/subscriptions/{source.subscription}/resourceGroups/{source.resource_group}"
            f"/providers/Microsoft.EventGrid/systemTopics/{source.topic_name}",
            "system topic",
        )
        location = source.location or (cli.az("resource", "show", "--ids", source.source_id) or {}).get("location")
        tags, adopted = {tag: "created"}, False
        cli.say(f"{source.source_id} has no system topic: creating {topic.name} in {topic.resource_group}")
    else:
        topic = ResourceId.parse(existing["id"], "system topic")
        old_tags = existing.get("tags") or {}
        adopted = old_tags.get(tag) != "created"
        tags = {**old_tags, tag: "adopted" if adopted else "created"}
        location = existing.get("location") or source.location
        cli.say(f"using the system topic {topic.name} of {source.source_id}" + (" (adopted)" * adopted))
    outputs = deploy_group(
        cli,
        env,
        f"topic-{source.key}",
        scope=topic,
        template="system-topic",
        parameters={
            "name": topic.name,
            "location": location or "global",
            "sourceId": source.source_id,
            "topicType": source.topic_type,
            "tags": tags,
            "identity": topic_identity(existing),
            "adopted": adopted,
        },
    )
    return topic, str(outputs.get("principalId") or "dry-run")


def grant_dead_letters(cli: Cli, env: Env, source: Source, principal: str) -> None:
    """The topic's identity may write dead letters into the app's container, as the workspace topic's does."""
    storage = ResourceId.parse(
        env.need("AZURE_STORAGE_ACCOUNT_ID", "run azd provision first"),
        "AZURE_STORAGE_ACCOUNT_ID",
        "Microsoft.Storage/storageAccounts",
    )
    deploy_group(
        cli,
        env,
        f"deadletter-{source.key}",
        scope=storage,
        template="../app/deadletter-rbac",
        parameters={
            "storageAccountName": storage.name,
            "deadLetterContainerName": env.get("DEAD_LETTER_CONTAINER", "deadletter"),
            "topicIdentityPrincipalId": principal,
        },
        retry_on=ROLE_NOT_REPLICATED,
        attempts=int(setting(env, "DEPLOY_ATTEMPTS", 6)),
        delay=setting(env, "DEPLOY_RETRY_SECONDS", 20),
    )


# ---- teardown ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Removal:
    what: str
    command: tuple[str, ...]


def _record(cli: Cli, scope: ResourceId, name: str) -> dict[str, Any] | None:
    """A hook deployment's record (what it created, its outputs), or None if there is none."""
    try:
        return cli.az(
            "deployment", "group", "show", "--subscription", scope.subscription,
            "--resource-group", scope.resource_group, "--name", name,
        )  # fmt: skip
    except AzError as error:
        if "DeploymentNotFound" in error.stderr or "ResourceGroupNotFound" in error.stderr:
            return None
        raise


def _created(record: Mapping[str, Any] | None) -> list[str]:
    return [r["id"] for r in ((record or {}).get("properties") or {}).get("outputResources") or []]


def _record_removal(scope: ResourceId, name: str) -> Removal:
    return Removal(
        f"deployment record {name} in {scope.resource_group}",
        ("deployment", "group", "delete", "--subscription", scope.subscription,
         "--resource-group", scope.resource_group, "--name", name),
    )  # fmt: skip


def _delete(resource_id: str, what: str) -> Removal:
    if "/providers/microsoft.authorization/roleassignments/" in resource_id.lower():
        return Removal(what, ("role", "assignment", "delete", "--ids", resource_id))
    return Removal(what, ("resource", "delete", "--ids", resource_id))


def plan_teardown(cli: Cli, env: Env) -> tuple[list[Removal], list[str]]:
    """What this environment created outside its resource group, and what it leaves (with why)."""
    removals: list[Removal] = []
    kept: list[str] = []
    if env.get("SYSTEM_TOPIC_NAME"):
        _plan_topic(cli, env, env.topic(), removals, kept)
    for source in configured_sources(env):
        found = find_topic_of(cli, source.subscription, source.source_id)
        if found is not None:
            topic = ResourceId.parse(found["id"], "system topic")
            _plan_topic(cli, env, topic, removals, kept, topic_purpose=f"topic-{source.key}",
                        subscriptions_purpose=f"subscriptions-{source.key}")  # fmt: skip
    workspace = env.workspace()
    for purpose in ("workspace-access", "ml-policies"):
        name = deployment_name(env.name, purpose)
        record = _record(cli, workspace, name)
        if record is not None:
            removals += [_delete(r, f"{_kind(r)} on workspace {workspace.name}") for r in _created(record)]
            removals.append(_record_removal(workspace, name))
    acs = env.acs()
    if acs is not None:
        _plan_acs(cli, env, acs, removals, kept)
    kept.append("the Microsoft.EventGrid provider registration (harmless, shared by the subscription)")
    return removals, kept


def _topic_subscriptions(cli: Cli, topic: ResourceId) -> list[dict[str, Any]]:
    return (
        cli.az(
            "eventgrid", "system-topic", "event-subscription", "list",
            "--subscription", topic.subscription, "--resource-group", topic.resource_group,
            "--system-topic-name", topic.name,
        )
        or []
    )  # fmt: skip


def _plan_topic(
    cli: Cli,
    env: Env,
    topic: ResourceId,
    removals: list[Removal],
    kept: list[str],
    *,
    topic_purpose: str = "system-topic",
    subscriptions_purpose: str = "eventgrid-subscriptions",
) -> None:
    app_id = env.get("AZURE_FUNCTION_APP_ID")
    ours = our_subscriptions(cli, topic, app_id) if app_id else []
    removals += [_delete(s["id"], f"event subscription {s['name']} on {topic.name}") for s in ours]
    name = deployment_name(env.name, subscriptions_purpose)
    if _record(cli, topic, name) is not None:
        removals.append(_record_removal(topic, name))

    name = deployment_name(env.name, topic_purpose)
    record = _record(cli, topic, name)
    if record is None:
        return
    adopted = bool((((record.get("properties") or {}).get("outputs") or {}).get("adopted") or {}).get("value"))
    tag = env_tag(env.name)
    tags = (cli.az("resource", "show", "--ids", topic.value) or {}).get("tags") or {}
    users = [k for k in tags if k.startswith(f"{PROJECT}-") and k != tag]
    ours_ids = {s["id"].lower() for s in ours}
    users += [s["name"] for s in _topic_subscriptions(cli, topic) if s["id"].lower() not in ours_ids]
    if adopted or users:
        why = "it existed before" if adopted else "others use it: " + ", ".join(users)
        kept.append(f"system topic {topic.name} ({why}); only this environment's tag is removed")
        value = "adopted" if adopted else "created"
        command = ("tag", "update", "--resource-id", topic.value, "--operation", "Delete", "--tags", f"{tag}={value}")
        removals.append(Removal(f"tag {tag} on system topic {topic.name}", command))
    else:
        removals.append(_delete(topic.value, f"system topic {topic.name} (created by this environment)"))
    removals.append(_record_removal(topic, name))


def _plan_acs(cli: Cli, env: Env, acs: ResourceId, removals: list[Removal], kept: list[str]) -> None:
    name = deployment_name(env.name, "acs-sender-assignment")
    record = _record(cli, acs, name)
    if record is not None:
        removals += [_delete(r, f"ACS sender role assignment on {acs.name}") for r in _created(record)]
        removals.append(_record_removal(acs, name))
    name = deployment_name(env.name, "acs-sender-role")
    record = _record(cli, acs, name)
    if record is None:
        return
    for role in _created(record):
        role_name = role.rsplit("/", 1)[-1]
        assignments = cli.az(
            "role", "assignment", "list", "--all", "--role", role_name, "--subscription", acs.subscription
        ) or []  # fmt: skip
        others = [a for a in assignments if a.get("principalId") != env.get("APP_PRINCIPAL_ID")]
        if others:
            kept.append(f"custom role {role_name} (still assigned to {len(others)} other principal(s))")
            continue
        scope = f"/subscriptions/{acs.subscription}/resourceGroups/{acs.resource_group}"
        command = ("role", "definition", "delete", "--name", role_name, "--scope", scope)
        removals.append(Removal(f"custom role definition {role_name} (ACS Email Sender)", command))
    removals.append(_record_removal(acs, name))


def _kind(resource_id: str) -> str:
    lowered = resource_id.lower()
    if "/roleassignments/" in lowered:
        return "role assignment"
    if "/policyassignments/" in lowered:
        return "policy assignment " + resource_id.rsplit("/", 1)[-1]
    return resource_id


def teardown(cli: Cli, env: Env, *, assume_yes: bool, confirm: Callable[[str], str] = input) -> None:
    removals, kept = plan_teardown(cli, env)
    cli.say(f"Outside its resource group, environment {env.name!r} created:")
    for removal in removals:
        cli.say(f"  - {removal.what}")
    if not removals:
        cli.say("  (nothing left)")
    for item in kept:
        cli.say(f"  kept: {item}")
    if not removals:
        return
    if not (assume_yes or cli.dry_run):
        try:
            answer = confirm(f"Remove these {len(removals)} items? [y/N] ")
        except EOFError:  # no terminal (CI): never assume yes
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            cli.say("nothing removed")
            return
    for removal in removals:
        cli.say(f"removing {removal.what}")
        try:
            cli.az(*removal.command, change=True)
        except AzError as error:
            if not re.search(r"NotFound|does not exist|could not be found", error.stderr, re.IGNORECASE):
                raise
    cli.say("done. `azd down` removes the app's resource group (and with it the rest).")


HOOKS: dict[str, Callable[..., None]] = {
    "preprovision": preprovision,
    "postprovision": postprovision,
    "postdeploy": postdeploy,
}
