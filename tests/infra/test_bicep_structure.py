"""Structural checks on the parsed templates: what the issue requires of the infrastructure, each
written so it fails when the property it names is broken."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest

from scripts.render_filters import subscription_name
from tests.infra.bicep_support import (
    BICEP_FILES,
    INFRA,
    REPO_ROOT,
    RESOURCE_DECLARATION,
    accessor,
    config,
    parsed,
    relative,
    resources_of_type,
)

FUNCTIONS_JSON = REPO_ROOT / "shared" / "functions.json"
FUNCTION_EVENT_TYPES = {k: v for k, v in json.loads(FUNCTIONS_JSON.read_text()).items() if not k.startswith("_")}
HOOKS = INFRA / "hooks"
DEPLOY_SOURCE = "\n".join(p.read_text() for p in sorted((REPO_ROOT / "deploy").glob("*.py")))  # the hooks' code
SUBSCRIPTIONS = HOOKS / "eventgrid-subscriptions.bicep"
MAIN = INFRA / "main.bicep"
FUNCTION_APP = INFRA / "app" / "function-app.bicep"

# The API versions this project has checked, per resource type (GA versions in the Bicep type definitions,
# Azure/bicep-types-az). Any other version needs a `// justify:` comment above the resource.
CHECKED_API_VERSIONS = {
    "Microsoft.EventGrid/systemTopics": {"2025-02-15", "2022-06-15"},
    "Microsoft.EventGrid/systemTopics/eventSubscriptions": {"2025-02-15"},
    "Microsoft.Web/sites": {"2024-11-01", "2025-03-01"},
    "Microsoft.Web/serverfarms": {"2024-11-01", "2025-03-01"},
    "Microsoft.Storage/storageAccounts": {"2025-01-01", "2025-06-01"},
    "Microsoft.Insights/components": {"2020-02-02"},
    "Microsoft.OperationalInsights/workspaces": {"2023-09-01", "2025-02-01"},
    "Microsoft.ManagedIdentity/userAssignedIdentities": {"2024-11-30", "2023-01-31"},
    "Microsoft.Authorization/roleAssignments": {"2022-04-01"},
    "Microsoft.Communication/communicationServices": {"2023-04-01", "2025-05-01", "2025-09-01"},
    "Microsoft.Communication/emailServices": {"2023-04-01", "2025-05-01", "2025-09-01"},
    "Microsoft.Communication/emailServices/domains": {"2023-04-01", "2025-05-01", "2025-09-01"},
    "Microsoft.MachineLearningServices/workspaces": {"2025-09-01"},
}
# Storage child types share the storage account's versions.
for child in ("blobServices", "blobServices/containers", "tableServices", "tableServices/tables"):
    CHECKED_API_VERSIONS[f"Microsoft.Storage/storageAccounts/{child}"] = {"2025-01-01", "2025-06-01"}

# The built-in roles this project assigns (ids of Azure's built-in role definitions).
KNOWN_ROLE_IDS = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
    "f6c7c914-8db3-469d-8ca1-694a8f32e121": "AzureML Data Scientist",
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": "Storage Blob Data Contributor",
    "4633458b-17de-408a-b874-0445c86b69e6": "Key Vault Secrets User",
    "d5a91429-5739-47e2-a06b-3470a27159e7": "EventGrid Data Sender",  # the forwarding topic (docs/cicd.md)
}
APP_PRINCIPAL, TOPIC_PRINCIPAL = "appIdentityPrincipalId", "topicIdentityPrincipalId"

# App settings Flex Consumption deprecates (Microsoft's Functions app settings reference): the runtime is declared
# in functionAppConfig instead.
DEPRECATED_FLEX_SETTINGS = {
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_EXTENSION_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "WEBSITE_CONTENTSHARE",
    "SCM_DO_BUILD_DURING_DEPLOYMENT",
    "ENABLE_ORYX_BUILD",
    "WEBSITE_TIME_ZONE",
    "TZ",
}


def event_grid_functions_in_function_app() -> dict[str, int]:
    """Function name -> how often function_app.py declares it with an Event Grid trigger (parsed, not imported)."""
    tree = ast.parse((REPO_ROOT / "function_app.py").read_text())
    counts: dict[str, int] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef):
            continue
        decorators = [d for d in node.decorator_list if isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute)]
        if not any(d.func.attr == "event_grid_trigger" for d in decorators):
            continue
        name = node.name
        for d in decorators:
            if d.func.attr == "function_name":
                name = d.args[0].value if d.args else d.keywords[0].value.value
        counts[name] = counts.get(name, 0) + 1
    return counts


# ---- event subscriptions --------------------------------------------------------------------------


def subscription_resource() -> dict[str, Any]:
    found = resources_of_type("Microsoft.EventGrid/systemTopics/eventSubscriptions")
    assert [(relative(path), name) for path, name, _ in found] == [
        ("infra/hooks/eventgrid-subscriptions.bicep", "functionSubscriptions")
    ], "event subscriptions belong in eventgrid-subscriptions.bicep only (created after the code is deployed)"
    return found[0][2]


def test_function_app_and_catalog_declare_the_same_event_grid_functions() -> None:
    assert event_grid_functions_in_function_app() == dict.fromkeys(FUNCTION_EVENT_TYPES, 1)


def test_subscriptions_loop_once_over_the_shared_catalog() -> None:
    template = parsed(SUBSCRIPTIONS)
    source = template["variables"]["functionEventTypes"]["value"]
    assert source["function"]["type"] == "load_json_content"
    catalog_path = (SUBSCRIPTIONS.parent / source["function"]["parameters"]["file_path"]).resolve()
    assert catalog_path == FUNCTIONS_JSON.resolve()

    resource = subscription_resource()
    loop = resource["config"]["loop_type"]
    assert loop == {"type": "object", "detail": {"item_name": "fn", "object_name": "functionEventTypes"}}
    # comment keys ("_comment") are skipped
    condition = json.dumps(resource["config"]["condition"])
    assert '"starts_with"' in condition and '"string_to_find": "_"' in condition


def test_each_function_gets_its_own_subscription_to_its_own_endpoint() -> None:
    body = config(subscription_resource())
    destination = body["properties"]["destination"]
    assert destination["endpointType"] == "AzureFunction"
    assert destination["properties"]["resourceId"] == "${functionAppId}/functions/${fn.key}"
    assert destination["properties"]["maxEventsPerBatch"] == 1
    name = body["name"]["function"]
    assert name["type"] == "take" and name["parameters"]["number_to_take"] == 64
    assert name["parameters"]["original_value"] == "${functionAppName}-${replace(fn.key, '_', '-')}"
    # the postdeploy hook removes stale subscriptions by the same rule
    assert subscription_name("func-x", "run_events") == "func-x-run-events"


def test_included_event_types_are_the_functions_own() -> None:
    included = config(subscription_resource())["properties"]["filter"]["includedEventTypes"]["function"]
    assert included["type"] == "intersection"
    function_types = {"function": {"type": "array", "parameters": {"convert_to_array": _fn_value()}}}
    assert included["parameters"]["arg_2"] == function_types, "never wider than the catalog's types"
    default = included["parameters"]["arg_1"]["operator"]["operands"]["operand_2"]["operator"]["operands"]
    assert default == {"operand_1": "includedEventTypes", "operand_2": function_types}, "default: all its types"


def _fn_value() -> dict[str, Any]:
    return {"operator": {"type": "property_accessor", "operands": {"operand_1": "fn", "operand_2": "value"}}}


def test_every_subscription_has_retry_policy_and_dead_lettering() -> None:
    template = parsed(SUBSCRIPTIONS)
    properties = config(subscription_resource())["properties"]
    assert properties["retryPolicy"] == {
        "maxDeliveryAttempts": "maxDeliveryAttempts",
        "eventTimeToLiveInMinutes": "eventTimeToLiveInMinutes",
    }
    for parameter, low, high in (("maxDeliveryAttempts", 1, 30), ("eventTimeToLiveInMinutes", 1, 1440)):
        decorators = {d["type"]: d["argument"] for d in template["parameters"][parameter]["decorators"]}
        assert (int(decorators["min_value"]), int(decorators["max_value"])) == (low, high)

    dead_letter = properties["deadLetterWithResourceIdentity"]
    assert dead_letter["identity"] == {"type": "SystemAssigned"}
    destination = dead_letter["deadLetterDestination"]
    assert destination["endpointType"] == "StorageBlob"
    assert destination["properties"]["blobContainerName"] == "deadLetterContainerName"
    assert template["parameters"]["deadLetterContainerName"]["default"] == "deadletter"


def test_topic_identity_may_write_to_the_dead_letter_container() -> None:
    template = parsed(INFRA / "app" / "deadletter-rbac.bicep")
    assignment = config(template["resources"]["topicWritesDeadLetters"])
    assert "deadLetterContainer" in json.dumps(assignment["scope"]), "scoped to the container, not the account"
    assert assignment["properties"]["principalId"] == TOPIC_PRINCIPAL
    role = assignment["properties"]["roleDefinitionId"]["function"]["parameters"]["resource_name_1"]
    assert template["variables"][role]["value"] == "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
    topic = parsed(HOOKS / "system-topic.bicep")
    assert config(topic["resources"]["topic"])["identity"] == "identity"
    assert topic["parameters"]["identity"]["default"] == {"type": "SystemAssigned"}


# ---- storage and identity-based app settings ------------------------------------------------------


def test_storage_forbids_keys_and_public_blobs_and_requires_tls12() -> None:
    (path, _, storage), *others = resources_of_type("Microsoft.Storage/storageAccounts")
    created = [r for _, _, r in [(path, _, storage), *others] if not r["existing"]]
    assert len(created) == 1
    properties = config(created[0])["properties"]
    assert properties["allowSharedKeyAccess"] is False
    assert properties["allowBlobPublicAccess"] is False
    assert properties["minimumTlsVersion"] == "TLS1_2"


def app_settings() -> dict[str, Any]:
    return parsed(FUNCTION_APP)["variables"]["appSettings"]["value"]


def test_app_uses_its_managed_identity_for_storage() -> None:
    settings = app_settings()
    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
    assert settings["AzureWebJobsStorage__clientId"] == "identityClientId"
    for service in ("blob", "queue", "table"):
        assert settings[f"AzureWebJobsStorage__{service}ServiceUri"] == f"storage{service.title()}Endpoint"
    assert "AzureWebJobsStorage" not in settings, "no connection string"
    assert settings["AZURE_CLIENT_ID"] == "identityClientId"


def test_app_sends_telemetry_with_entra_id() -> None:
    settings = app_settings()
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == "ClientId=${identityClientId};Authorization=AAD"
    insights = config(parsed(INFRA / "app" / "monitoring.bicep")["resources"]["applicationInsights"])
    assert insights["properties"]["DisableLocalAuth"] is True


def test_app_settings_the_app_reads_are_set_and_none_deprecated_on_flex() -> None:
    settings = app_settings()
    for name in ("ACS_ENDPOINT", "EMAIL_SENDER", "ROUTES_FILE", "INVOCATION_BUDGET_SECONDS", "DEAD_LETTER_CONTAINER"):
        assert name in settings
    assert not DEPRECATED_FLEX_SETTINGS & set(settings)
    site = config(parsed(FUNCTION_APP)["resources"]["functionApp"])
    loop_source = site["properties"]["siteConfig"]["appSettings"]["loop_type"]["detail"]["object_name"]
    assert "'arg_1': 'appSettings', 'arg_2': 'keyVaultReferenceSettings'" in loop_source


def test_app_runs_as_the_user_assigned_identity_everywhere() -> None:
    site = config(parsed(FUNCTION_APP)["resources"]["functionApp"])
    assert site["identity"]["type"] == "UserAssigned"
    assert site["properties"]["keyVaultReferenceIdentity"] == "identityId"
    deployment = site["properties"]["functionAppConfig"]["deployment"]["storage"]["authentication"]
    assert deployment == {"type": "UserAssignedIdentity", "userAssignedIdentityResourceId": "identityId"}
    assert site["properties"]["functionAppConfig"]["runtime"] == {"name": "python", "version": "pythonVersion"}
    main_params = parsed(INFRA / "main.bicep")["modules"]["functionApp"]["config"]["params"]
    assert accessor(main_params["identityClientId"]) == "identity.outputs.clientId"
    assert accessor(main_params["identityId"]) == "identity.outputs.id"


def test_plan_is_flex_consumption() -> None:
    plan = config(parsed(FUNCTION_APP)["resources"]["plan"])
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}


def test_key_vault_uses_rbac_and_outputs_no_secret_value() -> None:
    path = INFRA / "app" / "keyvault.bicep"
    vault = config(parsed(path)["resources"]["vault"])
    assert vault["properties"]["enableRbacAuthorization"] is True
    source = path.read_text()
    secure = re.findall(r"@secure\(\)\s*param\s+(\w+)", source)
    assert len(secure) == 4
    outputs = source[source.index("\noutput ") :]
    for name in secure:
        for match in re.finditer(rf"\b{name}\b", outputs):
            assert outputs[: match.start()].endswith("empty("), f"output uses the value of {name}"
    for path in BICEP_FILES:
        for output in parsed(path).get("outputs", {}):
            assert not re.search(r"secret|webhook|password|key$", output, re.IGNORECASE) or output == "appSettings"


# ---- role assignments -----------------------------------------------------------------------------


def role_id(path: Path, expression: Any) -> str:
    """The built-in role id a roleDefinitionId expression resolves to, or 'custom:<symbol>'."""
    template = parsed(path)
    if isinstance(expression, str) and expression in template.get("parameters", {}):
        # the custom ACS sender role, defined by its own deployment (replication lag) and passed in
        assert path.name == "acs-sender-assignment.bicep", f"{relative(path)}: role id from a parameter"
        return "custom:emailSenderRole"
    if accessor(expression) and accessor(expression).endswith(".id"):
        symbol = accessor(expression).removesuffix(".id")
        assert template["resources"][symbol]["type"] == "Microsoft.Authorization/roleDefinitions"
        return f"custom:{symbol}"
    reference = expression["function"]["parameters"]["resource_name_1"]
    name = accessor(reference)
    if "." in name:
        variable, key = name.split(".", 1)
        return template["variables"][variable]["value"][key]
    return template["variables"][name]["value"]


ROLE_ASSIGNMENTS = resources_of_type("Microsoft.Authorization/roleAssignments")


def test_role_assignments_are_found() -> None:
    assert len(ROLE_ASSIGNMENTS) >= 8


@pytest.mark.parametrize(("path", "name", "resource"), ROLE_ASSIGNMENTS, ids=[n for _, n, _ in ROLE_ASSIGNMENTS])
def test_role_assignment_targets_app_or_topic_identity_with_a_known_role(
    path: Path, name: str, resource: dict[str, Any]
) -> None:
    properties = config(resource)["properties"]
    assert properties["principalId"] in (APP_PRINCIPAL, TOPIC_PRINCIPAL)
    assert properties["principalType"] == "ServicePrincipal"
    role = role_id(path, properties["roleDefinitionId"])
    if role.startswith("custom:"):
        definition = config(parsed(HOOKS / "acs-sender-role.bicep")["resources"][role.removeprefix("custom:")])
        definition = definition["properties"]
        assert "resource_group" in json.dumps(definition["assignableScopes"]), "assignable in one resource group"
        actions = definition["permissions"][0]["actions"]
        assert all(action.startswith("Microsoft.Communication/") for action in actions)
    else:
        assert role in KNOWN_ROLE_IDS, f"{relative(path)}:{name} uses unknown role {role}"
    assert resource["config"].get("scope") or config(resource).get("scope"), "scoped to one resource"


def test_principal_parameters_are_wired_only_to_the_two_identities() -> None:
    allowed = {APP_PRINCIPAL: "identity.outputs.principalId", TOPIC_PRINCIPAL: "systemTopicPrincipalId"}
    wired = 0
    for module in parsed(INFRA / "main.bicep")["modules"].values():
        for parameter, value in config(module)["params"].items():
            if "principal" in parameter.lower():
                assert parameter in allowed and accessor(value) == allowed[parameter]
                wired += 1
    assert wired >= 3


# ---- API versions ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", BICEP_FILES, ids=relative)
def test_resource_api_versions_are_checked_or_justified(path: Path) -> None:
    source = path.read_text()
    for match in RESOURCE_DECLARATION.finditer(source):
        _, resource_type, version = match.groups()
        if version in CHECKED_API_VERSIONS.get(resource_type, set()):
            continue
        preceding = source[: match.start()].rstrip("\n").splitlines()[-3:]
        assert any("// justify:" in line for line in preceding), (
            f"{relative(path)}: {resource_type}@{version} is not a checked API version; add a `// justify:` comment"
        )


# ---- deployment wiring ----------------------------------------------------------------------------


def test_main_outputs_what_the_hooks_need() -> None:
    outputs = set(parsed(MAIN)["outputs"])
    hooks = DEPLOY_SOURCE
    needed = {"AZURE_FUNCTION_APP_ID", "AZURE_FUNCTION_APP_NAME", "AZURE_STORAGE_ACCOUNT_ID", "DEAD_LETTER_CONTAINER",
              "APP_PRINCIPAL_ID", "ACS_RESOURCE_ID", "AZURE_KEY_VAULT_NAME"}  # fmt: skip
    assert needed <= outputs
    for name in needed:
        assert f'"{name}"' in hooks, f"deploy/ does not use {name}"
    # what the preprovision hook sets, main.bicep must not overwrite with an output
    assert not {"SYSTEM_TOPIC_NAME", "SYSTEM_TOPIC_RESOURCE_GROUP", "SYSTEM_TOPIC_PRINCIPAL_ID"} & outputs


def test_main_parameters_cover_every_required_parameter() -> None:
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    for name, parameter in parsed(INFRA / "main.bicep")["parameters"].items():
        if parameter.get("default") is None and not any(d["type"] == "secure" for d in parameter["decorators"]):
            assert name in parameters, f"main.parameters.json does not map required parameter {name}"
    assert set(parameters) <= set(parsed(INFRA / "main.bicep")["parameters"])


def test_parameters_a_hook_sets_do_not_make_azd_prompt_before_the_hook() -> None:
    # `azd up` resolves main.parameters.json once before the preprovision hook runs: a required
    # parameter mapped to a value only the hook sets would be prompted for (or fail with --no-prompt).
    hooks = DEPLOY_SOURCE
    set_by_hooks = set(re.findall(r'env\.set\("([A-Z_]+)"', hooks))
    assert {"SYSTEM_TOPIC_PRINCIPAL_ID", "EXISTING_ACS_ENDPOINT"} <= set_by_hooks
    mapping = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    template = parsed(MAIN)["parameters"]
    mapped = 0
    for name, entry in mapping.items():
        match = re.fullmatch(r"\$\{(\w+)(=.*)?\}", str(entry["value"]))
        if match and match[1] in set_by_hooks:
            mapped += 1
            assert match[2] is not None and template[name].get("default") is not None, name
    assert mapped == 2


def test_azure_yaml_deploys_the_tagged_service() -> None:
    import yaml

    azure = yaml.safe_load((REPO_ROOT / "azure.yaml").read_text())
    (service_name, service), *_ = azure["services"].items()
    assert service["host"] == "function" and service["language"] == "python"
    assert parsed(MAIN)["variables"]["serviceName"]["value"] == service_name


# ---- nothing outside the app's resource group (azd down deletes every group main.bicep touches) -----


def foreign_scopes(path: Path) -> list[str]:
    """Deployments of a subscription-scope template that do not land in its own resource group `rg`."""
    template = parsed(path)
    found = [f"resource {name}" for name in template.get("resources", {}) if name != "rg"]
    for name, module in template.get("modules", {}).items():
        scope = config(module).get("scope")
        if scope != "rg":
            found.append(f"module {name} -> {scope}")
    return found


def test_main_deploys_only_into_the_apps_resource_group() -> None:
    template = parsed(MAIN)
    assert "targetScope = 'subscription'" in MAIN.read_text()
    assert template["resources"]["rg"]["type"] == "Microsoft.Resources/resourceGroups"
    assert len(template["modules"]) >= 8
    assert foreign_scopes(MAIN) == []


def test_a_module_in_another_resource_group_is_caught(tmp_path: Path) -> None:
    source = MAIN.read_text().replace(
        "module identity 'app/identity.bicep' = {\n  name: 'identity'\n  scope: rg",
        "module identity 'app/identity.bicep' = {\n  name: 'identity'\n  scope: resourceGroup('other-sub', 'rg-ml')",
    )
    broken = tmp_path / "main.bicep"
    broken.write_text(source)
    (found,) = foreign_scopes(broken)
    assert found.startswith("module identity -> ")


@pytest.mark.parametrize("path", sorted((INFRA / "app").glob("*.bicep")), ids=relative)
def test_app_modules_stay_in_their_resource_group(path: Path) -> None:
    template = parsed(path)
    source = path.read_text()
    assert "targetScope" not in source, "app modules are resource-group templates"
    assert not template.get("modules"), "no nested deployments that could target another scope"
    assert not re.search(r"\b(resourceGroup|subscription|tenant|managementGroup)\(\s*'", source)
    symbols = set(template.get("resources", {}))
    for name, resource in template.get("resources", {}).items():
        scope = config(resource).get("scope") or resource["config"].get("scope")
        if scope is not None:
            while isinstance(scope, dict) and scope.get("operator", {}).get("type") == "nested_resource_accessor":
                scope = scope["operator"]["operands"]["operand_1"]  # storage::blobService::container -> storage
            assert scope in symbols, f"{name} is scoped to {scope}, not a resource of this template"


def test_main_parameters_do_not_reach_outside() -> None:
    parameters = parsed(MAIN)["parameters"]
    assert "mlWorkspaceId" not in parameters, "the workspace is the hooks' business"
    assert not [p for p in parameters if "existingSystemTopic" in p]


# ---- Flex Consumption specifics -----------------------------------------------------------------------

# siteConfig keys a Flex Consumption app takes from this template; the others either moved to
# functionAppConfig (runtime, scale) or are rejected: ftpsState makes some regions refuse the whole
# site (ARM error 51021), which is why the Azure Verified Modules site module dropped it for FC1.
FLEX_SITE_CONFIG = {"appSettings", "minTlsVersion", "http20Enabled", "cors"}
REJECTED_ON_FLEX = {
    "ftpsState", "linuxFxVersion", "alwaysOn", "use32BitWorkerProcess", "functionAppScaleLimit",
    "minimumElasticInstanceCount", "preWarmedInstanceCount", "netFrameworkVersion", "javaVersion",
    "powerShellVersion", "windowsFxVersion",
}  # fmt: skip


def test_flex_site_config_has_no_key_flex_rejects() -> None:
    sites = [r for _, _, r in resources_of_type("Microsoft.Web/sites") if not r["existing"]]
    assert len(sites) == 1
    site_config = set(config(sites[0])["properties"]["siteConfig"])
    assert "appSettings" in site_config
    assert not site_config & REJECTED_ON_FLEX
    assert site_config <= FLEX_SITE_CONFIG
    assert "ftpsState" not in re.sub(r"//.*", "", FUNCTION_APP.read_text())


# From Microsoft's Flex Consumption azd template (Azure-Samples/functions-quickstart-python-http-azd,
# infra/main.bicep), without its canary region eastus2euap.
FLEX_REGIONS = {
    "australiaeast", "australiasoutheast", "brazilsouth", "canadacentral", "centralindia", "centralus",
    "eastasia", "eastus", "eastus2", "francecentral", "germanywestcentral", "italynorth", "japaneast",
    "koreacentral", "northcentralus", "northeurope", "norwayeast", "southafricanorth", "southcentralus",
    "southeastasia", "southindia", "spaincentral", "swedencentral", "uaenorth", "uksouth", "ukwest",
    "westcentralus", "westeurope", "westus", "westus2", "westus3",
}  # fmt: skip


def test_location_is_restricted_to_flex_regions() -> None:
    decorators = {d["type"]: d.get("argument") for d in parsed(MAIN)["parameters"]["location"]["decorators"]}
    assert set(decorators["allowed"]) == FLEX_REGIONS


def test_key_vault_keeps_soft_delete_without_purge_protection() -> None:
    vault = config(parsed(INFRA / "app" / "keyvault.bicep")["resources"]["vault"])["properties"]
    assert vault["enableSoftDelete"] is True and vault.get("enablePurgeProtection") in (None, False)
    # the preprovision hook purges this environment's soft-deleted vault (docs/deploy.md, Key Vault)
    assert "keyvault" in DEPLOY_SOURCE


# ---- against the published type definitions (a vendored subset, see its _source) ---------------------

WEB_TYPES = json.loads((Path(__file__).parent / "bicep_types" / "microsoft.web-2024-11-01.json").read_text())["types"]


def test_function_app_sets_only_writable_properties_its_api_version_knows() -> None:
    (_, _, site), *_ = [x for x in resources_of_type("Microsoft.Web/sites") if not x[2]["existing"]]
    assert site["api_version"] == "2024-11-01", "the vendored types are for 2024-11-01: update both"
    properties = config(site)["properties"]
    for type_name, body in (("SiteProperties", properties), ("SiteConfig", properties["siteConfig"])):
        known = set(WEB_TYPES[type_name]["writable"])
        assert set(body) <= known, f"{type_name}: unknown to Microsoft.Web 2024-11-01: {set(body) - known}"
    assert properties["siteConfig"]["minTlsVersion"] in WEB_TYPES["SiteConfig"]["enums"]["minTlsVersion"]


def test_the_type_check_catches_an_unknown_or_read_only_property() -> None:
    known = set(WEB_TYPES["SiteProperties"]["writable"])
    assert "defaultHostName" not in known and "httpsOnly" in known
    assert "ftpsStat" not in set(WEB_TYPES["SiteConfig"]["writable"])


EVENT_GRID = json.loads((Path(__file__).parent / "bicep_types" / "microsoft.eventgrid-2025-02-15.json").read_text())


def unknown_keys(body: dict[str, Any], type_name: str, children: dict[str, str]) -> list[str]:
    """Keys of ``body`` the vendored type does not have, recursing into ``children`` (key -> its type)."""
    found = [f"{type_name}.{k}" for k in body if k not in EVENT_GRID["types"][type_name]]
    for key, child in children.items():
        if isinstance(body.get(key), dict):
            found += unknown_keys(body[key], child, {})
    return found


def test_event_grid_resources_use_only_properties_their_api_version_knows() -> None:
    (topic,) = [r for _, _, r in resources_of_type("Microsoft.EventGrid/systemTopics") if not r["existing"]]
    assert topic["api_version"] == "2025-02-15", "the vendored types are for 2025-02-15: update both"
    assert unknown_keys(config(topic)["properties"], "SystemTopicProperties", {}) == []
    default_identity = parsed(HOOKS / "system-topic.bicep")["parameters"]["identity"]["default"]
    assert default_identity["type"] in EVENT_GRID["enums"]["IdentityInfo.type"]

    properties = config(subscription_resource())["properties"]
    assert properties["eventDeliverySchema"] in EVENT_GRID["enums"]["EventSubscriptionProperties.eventDeliverySchema"]
    problems = unknown_keys(properties, "EventSubscriptionProperties", {
        "destination": "AzureFunctionEventSubscriptionDestination",
        "filter": "EventSubscriptionFilter",
        "retryPolicy": "RetryPolicy",
        "deadLetterWithResourceIdentity": "DeadLetterWithResourceIdentity",
    })  # fmt: skip
    function_destination = "AzureFunctionEventSubscriptionDestinationProperties"
    problems += unknown_keys(properties["destination"]["properties"], function_destination, {})
    dead_letter = properties["deadLetterWithResourceIdentity"]
    problems += unknown_keys(dead_letter["identity"], "EventSubscriptionIdentity", {})
    problems += unknown_keys(dead_letter["deadLetterDestination"], "StorageBlobDeadLetterDestination", {
        "properties": "StorageBlobDeadLetterDestinationProperties"
    })  # fmt: skip
    assert problems == []
    assert unknown_keys({"maxEventsPerBatch": 1, "endpointUrl": "x"}, function_destination, {})  # webhook-only key
