"""The azd hooks (deploy/<hook>.py through scripts/*.sh), run as azd runs them, against a stub `az`
and `azd` on PATH that record every call and answer as Azure does. Asserts the commands, their
scopes and parameters, the retries while Azure is not ready, and that failures end in one clear
message and a non-zero exit, never a traceback."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from deploy.common import PROJECT, deployment_name
from scripts.render_filters import load_function_event_types, subscription_name
from tests.infra.azure_stub import Azure, Call

REPO_ROOT = Path(__file__).resolve().parents[2]
ENV = "dev"
APP_SUB = "11111111-1111-1111-1111-111111111111"
OTHER_SUB = "22222222-2222-2222-2222-222222222222"
APP_RG = f"rg-{ENV}"
APP_ID = f"/subscriptions/{APP_SUB}/resourceGroups/{APP_RG}/providers/Microsoft.Web/sites/func-abc"
STORAGE_ID = f"/subscriptions/{APP_SUB}/resourceGroups/{APP_RG}/providers/Microsoft.Storage/storageAccounts/stabc"
PRINCIPAL = "aaaaaaaa-0000-0000-0000-000000000001"
FUNCTIONS = load_function_event_types()


ACS_ID = f"/subscriptions/{OTHER_SUB}/resourceGroups/rg-mail/providers/Microsoft.Communication/communicationServices/a1"
SH = shutil.which("sh") or "/bin/sh"


def workspace_id(subscription: str = APP_SUB, group: str = "rg-ml") -> str:
    workspaces = "providers/Microsoft.MachineLearningServices/workspaces"
    return f"/subscriptions/{subscription}/resourceGroups/{group}/{workspaces}/mlw"


def topic_id(subscription: str = APP_SUB, group: str = "rg-ml", name: str = "evgt-mlw") -> str:
    return f"/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.EventGrid/systemTopics/{name}"


def deployed(outputs: dict[str, Any]) -> dict[str, Any]:
    """`az deployment group create` output, as the CLI prints it."""
    return {"properties": {"provisioningState": "Succeeded", "outputs": {k: {"value": v} for k, v in outputs.items()}}}


@pytest.fixture
def azure(tmp_path: Path) -> Azure:
    stub = Azure(tmp_path / "azure", REPO_ROOT)
    stub.set_env(AZURE_ENV_NAME=ENV, AZURE_SUBSCRIPTION_ID=APP_SUB, AZURE_LOCATION="westeurope")
    return stub


def run(azure: Azure, hook: str, *args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SH, f"scripts/{hook}.sh", *args],
        cwd=REPO_ROOT,
        env=azure.process_env(**env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def deployments(azure: Azure) -> list[Call]:
    return [c for c in azure.calls() if c.has("deployment", "group", "create")]


def changes(azure: Azure) -> list[Call]:
    verbs = {"create", "delete", "register", "purge", "update", "set"}
    az = [c for c in azure.calls() if verbs & set(c.argv) or c.option("--method") == "post"]
    return az + [c for c in azure.calls("azd") if c.argv[:2] == ["env", "set"]]


def assert_clean_failure(result: subprocess.CompletedProcess[str], *phrases: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    for phrase in phrases:
        assert phrase in result.stderr, result.stderr


# ---- preprovision: the system topic, found or created -----------------------------------------------


def answer_workspace(azure: Azure, ws: str, *, registered: bool = True) -> None:
    azure.answer("resource", "show", ws, stdout={"id": ws, "location": "westeurope"})
    azure.answer("provider", "show", stdout={"registrationState": "Registered" if registered else "NotRegistered"})
    azure.answer("provider", "register", stdout="")


def test_preprovision_creates_the_topic_in_the_workspace_group_when_there_is_none(azure: Azure) -> None:
    azure.set_env(AZURE_ML_WORKSPACE_ID=workspace_id())
    answer_workspace(azure, workspace_id())
    azure.answer("eventgrid", "system-topic", "list", stdout=[])
    azure.answer("create", deployment_name(ENV, "system-topic"), stdout=deployed({"principalId": "topic-p"}))

    result = run(azure, "preprovision")

    assert result.returncode == 0, result.stderr
    (call,) = deployments(azure)
    assert call.option("--subscription") == APP_SUB and call.option("--resource-group") == "rg-ml"
    assert call.option("--name") == f"{PROJECT}-{ENV}-system-topic"
    assert call.option("--template-file") == str(REPO_ROOT / "infra" / "hooks" / "system-topic.bicep")
    assert call.parameters == {
        "name": "evgt-mlw",
        "location": "westeurope",
        "sourceId": workspace_id(),
        "tags": {f"{PROJECT}-{ENV}": "created"},
        "identity": {"type": "SystemAssigned"},
        "adopted": False,
    }
    assert azure.env["SYSTEM_TOPIC_NAME"] == "evgt-mlw"
    assert azure.env["SYSTEM_TOPIC_RESOURCE_GROUP"] == "rg-ml"
    assert azure.env["SYSTEM_TOPIC_SUBSCRIPTION_ID"] == APP_SUB
    assert azure.env["SYSTEM_TOPIC_PRINCIPAL_ID"] == "topic-p"
    assert not [c for c in azure.calls() if c.has("provider", "register")], "already registered: left alone"


def test_preprovision_adopts_the_portal_topic_keeping_its_tags_and_identities(azure: Azure) -> None:
    azure.set_env(AZURE_ML_WORKSPACE_ID=workspace_id())
    answer_workspace(azure, workspace_id())
    portal_topic = {
        "id": topic_id(group="rg-events", name="mlw-events-portal"),
        "name": "mlw-events-portal",
        "location": "westeurope",
        "source": workspace_id().upper(),  # ARM ids compare case-insensitively
        "tags": {"owner": "ml-platform", "cost-center": "42"},
        "identity": {"type": "UserAssigned", "userAssignedIdentities": {"/subscriptions/x/uai": {"principalId": "p"}}},
    }
    other = {"id": topic_id(name="other"), "source": workspace_id(group="rg-other"), "tags": {}}
    azure.answer("eventgrid", "system-topic", "list", stdout=[other, portal_topic])
    azure.answer("create", deployment_name(ENV, "system-topic"), stdout=deployed({"principalId": "topic-p"}))

    assert run(azure, "preprovision").returncode == 0

    (call,) = deployments(azure)
    assert call.option("--resource-group") == "rg-events"
    parameters = call.parameters
    assert parameters["name"] == "mlw-events-portal" and parameters["adopted"] is True
    assert parameters["tags"] == {"owner": "ml-platform", "cost-center": "42", f"{PROJECT}-{ENV}": "adopted"}
    assert parameters["identity"] == {
        "type": "SystemAssigned, UserAssigned",
        "userAssignedIdentities": {"/subscriptions/x/uai": {}},
    }
    assert azure.env["SYSTEM_TOPIC_RESOURCE_GROUP"] == "rg-events"


def test_rerun_keeps_a_topic_this_environment_created_as_created(azure: Azure) -> None:
    azure.set_env(AZURE_ML_WORKSPACE_ID=workspace_id())
    answer_workspace(azure, workspace_id())
    tags = {f"{PROJECT}-{ENV}": "created"}
    ours = {"id": topic_id(), "source": workspace_id(), "location": "westeurope", "tags": tags}
    azure.answer("eventgrid", "system-topic", "list", stdout=[ours])
    azure.answer("create", deployment_name(ENV, "system-topic"), stdout=deployed({"principalId": "topic-p"}))

    assert run(azure, "preprovision").returncode == 0
    assert deployments(azure)[0].parameters["adopted"] is False


def test_workspace_in_another_subscription_registers_event_grid_in_the_apps(azure: Azure) -> None:
    ws = workspace_id(subscription=OTHER_SUB)
    azure.set_env(AZURE_ML_WORKSPACE_ID=ws)
    answer_workspace(azure, ws, registered=False)
    azure.answer("eventgrid", "system-topic", "list", stdout=[])
    azure.answer("create", deployment_name(ENV, "system-topic"), stdout=deployed({"principalId": "topic-p"}))

    assert run(azure, "preprovision").returncode == 0

    registered = [c.option("--subscription") for c in azure.calls() if c.has("provider", "register")]
    assert registered == [APP_SUB, OTHER_SUB]
    assert all(c.has("--namespace", "Microsoft.EventGrid") for c in azure.calls() if c.has("provider"))
    listing = next(c for c in azure.calls() if c.has("system-topic", "list"))
    assert listing.option("--subscription") == OTHER_SUB, "the topic lives with the workspace"
    assert deployments(azure)[0].option("--subscription") == OTHER_SUB


def test_preprovision_purges_only_this_environments_soft_deleted_vault(azure: Azure) -> None:
    azure.set_env(AZURE_ML_WORKSPACE_ID=workspace_id(), AZURE_KEY_VAULT_NAME="kv-abc")
    answer_workspace(azure, workspace_id())
    azure.answer(
        "keyvault", "list-deleted",
        stdout=[{"name": "kv-other", "properties": {"location": "westeurope"}},
                {"name": "kv-abc", "properties": {"location": "westeurope"}}],
    )  # fmt: skip
    azure.answer("keyvault", "purge", stdout="")
    azure.answer("eventgrid", "system-topic", "list", stdout=[])
    azure.answer("create", deployment_name(ENV, "system-topic"), stdout=deployed({"principalId": "topic-p"}))

    assert run(azure, "preprovision").returncode == 0
    purges = [c for c in azure.calls() if c.has("keyvault", "purge")]
    assert [(c.option("--name"), c.option("--location")) for c in purges] == [("kv-abc", "westeurope")]


def test_existing_acs_endpoint_is_looked_up_for_main_bicep(azure: Azure) -> None:
    acs = ACS_ID
    azure.set_env(AZURE_ML_WORKSPACE_ID=workspace_id(), EXISTING_ACS_RESOURCE_ID=acs, EXISTING_EMAIL_SENDER="a@b.c")
    answer_workspace(azure, workspace_id())
    azure.answer("resource", "show", acs, stdout={"properties": {"hostName": "a1.europe.communication.azure.com"}})
    azure.answer("eventgrid", "system-topic", "list", stdout=[])
    azure.answer("create", deployment_name(ENV, "system-topic"), stdout=deployed({"principalId": "topic-p"}))

    assert run(azure, "preprovision").returncode == 0
    assert azure.env["EXISTING_ACS_ENDPOINT"] == "https://a1.europe.communication.azure.com"


def test_dry_run_reads_but_changes_nothing_and_prints_the_commands(azure: Azure) -> None:
    azure.set_env(AZURE_ML_WORKSPACE_ID=workspace_id())
    answer_workspace(azure, workspace_id(), registered=False)
    azure.answer("eventgrid", "system-topic", "list", stdout=[])

    result = run(azure, "preprovision", "--dry-run")

    assert result.returncode == 0, result.stderr
    assert changes(azure) == []
    assert "would run: az provider register --namespace Microsoft.EventGrid" in result.stdout
    assert f"would run: az deployment group create --subscription {APP_SUB} --resource-group rg-ml" in result.stdout
    assert '"tags": {"amlevents-dev": "created"}' in result.stdout
    assert "would run: azd env set SYSTEM_TOPIC_NAME evgt-mlw" in result.stdout


@pytest.mark.parametrize(
    ("settings", "phrase"),
    [
        ({}, "AZURE_ML_WORKSPACE_ID is not set"),
        ({"AZURE_ML_WORKSPACE_ID": "/subscriptions/x/resourceGroups/y/providers/Microsoft.Storage/storageAccounts/z"},
         "AZURE_ML_WORKSPACE_ID is not a resource id like"),
        ({"AZURE_ML_WORKSPACE_ID": workspace_id(), "EXISTING_ACS_RESOURCE_ID": "acs"},
         "EXISTING_ACS_RESOURCE_ID is not a resource id"),
        ({"AZURE_ML_WORKSPACE_ID": workspace_id(), "AZURE_SUBSCRIPTION_ID": ""},
         "AZURE_SUBSCRIPTION_ID is not set: `azd up` asks for it"),
    ],
)  # fmt: skip
def test_a_missing_or_malformed_setting_is_named(azure: Azure, settings: dict[str, str], phrase: str) -> None:
    azure.set_env(**settings)
    result = run(azure, "preprovision")
    assert_clean_failure(result, "preprovision:", phrase)
    assert azure.calls() == []


def test_an_unreadable_workspace_fails_with_azures_reason(azure: Azure) -> None:
    azure.set_env(AZURE_ML_WORKSPACE_ID=workspace_id())
    azure.fail("resource", "show", code="AuthorizationFailed", message="The client does not have authorization")
    result = run(azure, "preprovision")
    assert_clean_failure(result, "cannot read the workspace", "AuthorizationFailed")


def test_an_unexpected_answer_is_one_line_not_a_traceback(azure: Azure) -> None:
    azure.set_env(AZURE_ML_WORKSPACE_ID=workspace_id())
    answer_workspace(azure, workspace_id())
    azure.answer("eventgrid", "system-topic", "list", stdout={"value": "not the list the CLI prints"})
    assert_clean_failure(run(azure, "preprovision"), "preprovision: unexpected", "DEPLOY_DEBUG=1")


def test_a_new_topic_name_is_valid_for_event_grid(azure: Azure) -> None:
    ws = workspace_id().replace("/mlw", "/ml_ws_1")
    azure.set_env(AZURE_ML_WORKSPACE_ID=ws)
    answer_workspace(azure, ws)
    azure.answer("eventgrid", "system-topic", "list", stdout=[])
    azure.answer("create", deployment_name(ENV, "system-topic"), stdout=deployed({"principalId": "p"}))
    assert run(azure, "preprovision").returncode == 0
    assert deployments(azure)[0].parameters["name"] == "evgt-ml-ws-1"


def test_without_az_on_path_the_hook_says_so(azure: Azure) -> None:
    (azure.bin / "az").unlink()
    azure.set_env(AZURE_ML_WORKSPACE_ID=workspace_id())
    assert_clean_failure(run(azure, "preprovision"), "'az' is not on PATH")


# ---- postprovision: roles outside the app's group, Key Vault references -----------------------------


def provisioned(azure: Azure, **extra: str) -> None:
    values = dict(
        AZURE_ML_WORKSPACE_ID=workspace_id(),
        APP_PRINCIPAL_ID=PRINCIPAL,
        AZURE_FUNCTION_APP_ID=APP_ID,
        AZURE_FUNCTION_APP_NAME="func-abc",
        AZURE_STORAGE_ACCOUNT_ID=STORAGE_ID,
        DEAD_LETTER_CONTAINER="deadletter",
        SYSTEM_TOPIC_NAME="evgt-mlw",
        SYSTEM_TOPIC_RESOURCE_GROUP="rg-ml",
        SYSTEM_TOPIC_SUBSCRIPTION_ID=APP_SUB,
        SYSTEM_TOPIC_PRINCIPAL_ID="topic-p",
    )
    azure.set_env(**{**values, **extra})


def answer_key_vault_references(azure: Azure, *statuses: list[dict[str, Any]]) -> None:
    azure.answer("rest", "post", stdout="")
    for status in statuses[:-1]:
        azure.answer("rest", "get", stdout={"value": status}, times=1)
    azure.answer("rest", "get", stdout={"value": statuses[-1]})


def test_postprovision_grants_the_workspace_role_in_the_workspace_group(azure: Azure) -> None:
    provisioned(azure)
    azure.answer("create", deployment_name(ENV, "workspace-access"), stdout=deployed({}))
    answer_key_vault_references(azure, [])

    result = run(azure, "postprovision")

    assert result.returncode == 0, result.stderr
    (call,) = deployments(azure)
    assert (call.option("--subscription"), call.option("--resource-group")) == (APP_SUB, "rg-ml")
    assert call.option("--name") == f"{PROJECT}-{ENV}-workspace-access"
    assert call.parameters == {"workspaceName": "mlw", "appIdentityPrincipalId": PRINCIPAL}


def test_acs_role_definition_and_assignment_are_separate_and_retried_while_replicating(azure: Azure) -> None:
    acs = ACS_ID
    provisioned(azure, ACS_RESOURCE_ID=acs, ASSIGN_ML_POLICIES="true")
    role_id = f"/subscriptions/{OTHER_SUB}/providers/Microsoft.Authorization/roleDefinitions/r1"
    azure.answer("create", deployment_name(ENV, "workspace-access"), stdout=deployed({}))
    azure.answer("create", deployment_name(ENV, "acs-sender-role"), stdout=deployed({"roleDefinitionId": role_id}))
    assignment = deployment_name(ENV, "acs-sender-assignment")
    azure.fail("create", assignment, code="RoleDefinitionDoesNotExist", message="The role definition", times=2)
    azure.answer("create", assignment, stdout=deployed({}))
    azure.answer("create", deployment_name(ENV, "ml-policies"), stdout=deployed({}))
    answer_key_vault_references(azure, [])

    result = run(azure, "postprovision")

    assert result.returncode == 0, result.stderr
    names = [c.option("--name") for c in deployments(azure)]
    assert names == [
        deployment_name(ENV, "workspace-access"),
        deployment_name(ENV, "acs-sender-role"),
        assignment,
        assignment,
        assignment,
        deployment_name(ENV, "ml-policies"),
    ]
    role_call, assignment_call = deployments(azure)[1], deployments(azure)[-2]
    assert (role_call.option("--subscription"), role_call.option("--resource-group")) == (OTHER_SUB, "rg-mail")
    assert assignment_call.parameters == {
        "communicationServiceName": "a1",
        "roleDefinitionId": role_id,
        "appIdentityPrincipalId": PRINCIPAL,
    }
    assert deployments(azure)[-1].parameters == {"workspaceName": "mlw", "environmentName": ENV}
    assert "RoleDefinitionDoesNotExist" in result.stdout


def test_a_role_error_that_is_not_replication_is_not_retried(azure: Azure) -> None:
    provisioned(azure)
    azure.fail("create", deployment_name(ENV, "workspace-access"), code="AuthorizationFailed", message="no write")
    result = run(azure, "postprovision")
    assert_clean_failure(result, "postprovision:", "AuthorizationFailed")
    assert len(deployments(azure)) == 1


def test_postprovision_without_the_topic_identity_says_preprovision_did_not_run(azure: Azure) -> None:
    provisioned(azure, SYSTEM_TOPIC_PRINCIPAL_ID="")
    assert_clean_failure(run(azure, "postprovision"), "SYSTEM_TOPIC_PRINCIPAL_ID is not set", "preprovision")
    assert deployments(azure) == []


def test_key_vault_references_are_refreshed_until_they_resolve(azure: Azure) -> None:
    provisioned(azure)
    azure.answer("create", deployment_name(ENV, "workspace-access"), stdout=deployed({}))
    unresolved = [{"name": "TEAMS_WEBHOOK_URL", "properties": {"status": "AccessToKeyVaultDenied"}}]
    resolved = [{"name": "TEAMS_WEBHOOK_URL", "properties": {"status": "Resolved"}}]
    answer_key_vault_references(azure, unresolved, resolved)

    result = run(azure, "postprovision")

    assert result.returncode == 0, result.stderr
    posts = [c for c in azure.calls() if c.has("rest", "post")]
    assert len(posts) == 2
    assert posts[0].option("--url") == f"{APP_ID}/config/configreferences/appsettings/refresh?api-version=2022-03-01"
    assert "TEAMS_WEBHOOK_URL (AccessToKeyVaultDenied)" in result.stdout
    assert "WARNING" not in result.stdout


def test_references_that_never_resolve_are_a_warning_naming_them(azure: Azure) -> None:
    provisioned(azure, KEYVAULT_REFRESH_ATTEMPTS="2")
    azure.answer("create", deployment_name(ENV, "workspace-access"), stdout=deployed({}))
    answer_key_vault_references(azure, [{"name": "SLACK_WEBHOOK_URL", "properties": {"status": "SecretNotFound"}}])
    result = run(azure, "postprovision")
    assert result.returncode == 0
    assert "WARNING: Key Vault references still unresolved: SLACK_WEBHOOK_URL (SecretNotFound)" in result.stdout


# ---- postdeploy: event subscriptions once the functions exist ---------------------------------------


def test_postdeploy_retries_while_the_functions_are_not_indexed(azure: Azure) -> None:
    provisioned(azure)
    name = deployment_name(ENV, "eventgrid-subscriptions")
    azure.fail("create", name, code="InvalidRequest", message="Destination endpoint not found.", times=1)
    azure.fail(
        "create", name, code="Endpoint validation",
        message="Webhook validation handshake failed for https://func-abc.azurewebsites.net", times=1,
    )  # fmt: skip
    azure.answer("create", name, stdout=deployed({}))
    azure.answer("event-subscription", "list", stdout=[])

    result = run(azure, "postdeploy")

    assert result.returncode == 0, result.stderr
    calls = deployments(azure)
    assert len(calls) == 3 and {c.option("--name") for c in calls} == {f"{PROJECT}-{ENV}-eventgrid-subscriptions"}
    call = calls[-1]
    assert (call.option("--subscription"), call.option("--resource-group")) == (APP_SUB, "rg-ml")
    assert call.option("--template-file") == str(REPO_ROOT / "infra" / "hooks" / "eventgrid-subscriptions.bicep")
    parameters = call.parameters
    assert parameters["systemTopicName"] == "evgt-mlw" and parameters["functionAppId"] == APP_ID
    assert parameters["deadLetterStorageAccountId"] == STORAGE_ID
    assert (parameters["maxDeliveryAttempts"], parameters["eventTimeToLiveInMinutes"]) == (30, 1440)
    assert set(parameters["filters"]) == set(FUNCTIONS), "rendered from routes.yaml by the app's loader"
    assert "Destination endpoint not found" in result.stdout


def test_postdeploy_gives_up_after_its_attempts(azure: Azure) -> None:
    provisioned(azure, POSTDEPLOY_ATTEMPTS="3")
    azure.fail("create", code="InvalidRequest", message="Destination endpoint not found.")
    result = run(azure, "postdeploy")
    assert_clean_failure(result, "postdeploy:", "Destination endpoint not found")
    assert len(deployments(azure)) == 3


def test_postdeploy_removes_only_its_own_unwanted_subscriptions(azure: Azure, tmp_path: Path) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text("routes:\n  - name: runs\n    events: [RunStatusChanged]\n    actions: [log]\n")
    provisioned(azure, ROUTES_FILE=str(routes))
    azure.answer("create", deployment_name(ENV, "eventgrid-subscriptions"), stdout=deployed({}))

    def subscription(app_id: str, function: str) -> dict[str, Any]:
        name = subscription_name(app_id.rsplit("/", 1)[-1], function)
        return {
            "id": f"{topic_id()}/eventSubscriptions/{name}",
            "name": name,
            "destination": {"endpointType": "AzureFunction", "resourceId": f"{app_id}/functions/{function}"},
        }

    other_app = APP_ID.replace("func-abc", "func-other")
    listed = [subscription(APP_ID, "run_events"), subscription(APP_ID, "model_deployed"),
              subscription(other_app, "model_deployed")]  # fmt: skip
    azure.answer("event-subscription", "list", stdout=listed)
    azure.answer("resource", "delete", stdout="")

    result = run(azure, "postdeploy")

    assert result.returncode == 0, result.stderr
    assert deployments(azure)[0].parameters["filters"]["model_deployed"] == {"subscribe": False}
    deleted = [c.option("--ids") for c in azure.calls() if c.has("resource", "delete")]
    assert deleted == [listed[1]["id"]]


def test_postdeploy_with_a_package_missing_from_the_venv_says_which(azure: Azure, tmp_path: Path) -> None:
    provisioned(azure)
    broken = tmp_path / "site" / "yaml"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'yaml'\", name='yaml')\n")
    result = run(azure, "postdeploy", PYTHONPATH=str(broken.parent))
    assert_clean_failure(result, "postdeploy:", "'yaml' is missing", "scripts/setup_env.sh --deploy")
    assert deployments(azure) == []


def test_postdeploy_before_preprovision_says_what_to_run(azure: Azure) -> None:
    azure.set_env(AZURE_ML_WORKSPACE_ID=workspace_id())
    assert_clean_failure(run(azure, "postdeploy"), "SYSTEM_TOPIC_SUBSCRIPTION_ID is not set", "preprovision")


# ---- teardown: exactly what the hooks made, after asking ---------------------------------------------


def record(*resource_ids: str, **outputs: Any) -> dict[str, Any]:
    return {
        "properties": {
            "outputResources": [{"id": r} for r in resource_ids],
            "outputs": {k: {"value": v} for k, v in outputs.items()},
        }
    }


def answer_records(azure: Azure, *, adopted: bool, topic_tags: dict[str, str], others: list[dict[str, Any]]) -> None:
    ours = {
        "id": f"{topic_id()}/eventSubscriptions/func-abc-run-events",
        "name": "func-abc-run-events",
        "destination": {"resourceId": f"{APP_ID}/functions/run_events"},
    }
    azure.answer("event-subscription", "list", stdout=[ours, *others])
    role = f"{workspace_id()}/providers/Microsoft.Authorization/roleAssignments/ra1"
    azure.answer("show", deployment_name(ENV, "eventgrid-subscriptions"), stdout=record(ours["id"]))
    azure.answer("show", deployment_name(ENV, "system-topic"), stdout=record(topic_id(), adopted=adopted))
    azure.answer("show", deployment_name(ENV, "workspace-access"), stdout=record(role))
    azure.fail("show", deployment_name(ENV, "ml-policies"), code="DeploymentNotFound", message="not found")
    azure.answer("resource", "show", topic_id(), stdout={"id": topic_id(), "tags": topic_tags})
    for verb in ("resource", "role", "tag", "deployment"):
        azure.answer(verb, "delete", stdout="")
    azure.answer("tag", "update", stdout={})


def test_teardown_lists_asks_and_removes_what_this_environment_created(azure: Azure) -> None:
    provisioned(azure)
    answer_records(azure, adopted=False, topic_tags={f"{PROJECT}-{ENV}": "created"}, others=[])

    result = run(azure, "teardown", stdin="y\n")

    assert result.returncode == 0, result.stderr
    assert "event subscription func-abc-run-events on evgt-mlw" in result.stdout
    assert "system topic evgt-mlw (created by this environment)" in result.stdout
    assert "Remove these" in result.stdout
    removed = [c for c in azure.calls() if c.has("delete")]
    assert [c.argv[:2] for c in removed] == [
        ["resource", "delete"],  # our subscription
        ["deployment", "group"],
        ["resource", "delete"],  # the topic
        ["deployment", "group"],
        ["role", "assignment"],
        ["deployment", "group"],
    ]
    assert removed[2].option("--ids") == topic_id()
    assert {c.option("--name") for c in removed if c.has("deployment")} == {
        deployment_name(ENV, p) for p in ("eventgrid-subscriptions", "system-topic", "workspace-access")
    }
    assert not [c for c in azure.calls() if c.has("group", "delete") and c.option("--resource-group") == APP_RG]


def test_teardown_keeps_an_adopted_or_shared_topic_and_removes_only_its_tag(azure: Azure) -> None:
    provisioned(azure)
    foreign = {"id": f"{topic_id()}/eventSubscriptions/theirs", "name": "theirs", "destination": {"resourceId": "x"}}
    answer_records(azure, adopted=True, topic_tags={"owner": "ml", f"{PROJECT}-{ENV}": "adopted"}, others=[foreign])

    result = run(azure, "teardown", "--yes")

    assert result.returncode == 0, result.stderr
    assert "kept: system topic evgt-mlw (it existed before)" in result.stdout
    deleted = [c.option("--ids") for c in azure.calls() if c.has("resource", "delete")]
    assert topic_id() not in deleted and f"{topic_id()}/eventSubscriptions/theirs" not in deleted
    (untag,) = [c for c in azure.calls() if c.has("tag", "update")]
    assert untag.option("--resource-id") == topic_id() and untag.option("--tags") == f"{PROJECT}-{ENV}=adopted"


def test_teardown_answered_no_or_without_a_terminal_removes_nothing(azure: Azure) -> None:
    provisioned(azure)
    answer_records(azure, adopted=False, topic_tags={}, others=[])
    for stdin in ("n\n", ""):
        result = run(azure, "teardown", stdin=stdin)
        assert result.returncode == 0 and "nothing removed" in result.stdout
    assert [c for c in azure.calls() if c.has("delete")] == []


# ---- the wrappers: the project's interpreter, never the system one -----------------------------------


def test_wrappers_are_thin_and_azure_yaml_runs_them() -> None:
    import yaml

    hooks = yaml.safe_load((REPO_ROOT / "azure.yaml").read_text())["hooks"]
    for hook in ("preprovision", "postprovision", "postdeploy"):
        assert hooks[hook]["posix"]["run"] == f"./scripts/{hook}.sh"
        assert hooks[hook]["windows"]["run"] == f"./scripts/{hook}.ps1"
        assert hooks[hook]["posix"]["continueOnError"] is False
    assert hooks["predown"]["posix"]["run"] == "./scripts/teardown.sh --dry-run"
    for hook in ("preprovision", "postprovision", "postdeploy", "teardown"):
        for suffix, runner in ((".sh", "hook.sh"), (".ps1", "hook.ps1")):
            text = (REPO_ROOT / "scripts" / f"{hook}{suffix}").read_text()
            assert runner in text and len(text.splitlines()) <= 4
    for runner in ("hook.sh", "hook.ps1"):
        text = (REPO_ROOT / "scripts" / runner).read_text()
        assert "-m deploy" in text and "python3 -m deploy" not in text


def copy_wrapper(tmp_path: Path, setup_script: str) -> Path:
    root = tmp_path / "project"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "scripts" / "hook.sh", root / "scripts" / "hook.sh")
    shutil.copy(REPO_ROOT / "scripts" / "postdeploy.sh", root / "scripts" / "postdeploy.sh")
    setup = root / "scripts" / "setup_env.sh"
    setup.write_text(setup_script)
    setup.chmod(0o755)
    return root


def test_wrapper_creates_the_venv_when_missing_and_runs_the_hook_with_it(tmp_path: Path) -> None:
    root = copy_wrapper(
        tmp_path,
        '#!/bin/sh\n[ "$1" = --deploy ] || exit 9\nmkdir -p .venv/bin\n'
        "printf '#!/bin/sh\\necho \"venv python: $*\"\\n' > .venv/bin/python\nchmod +x .venv/bin/python\n",
    )
    result = subprocess.run([SH, "scripts/postdeploy.sh", "--dry-run"], cwd=root, capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin"}, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "creating it (scripts/setup_env.sh --deploy)" in result.stderr
    assert result.stdout.strip() == "venv python: -m deploy postdeploy --dry-run"


def test_wrapper_that_cannot_create_the_venv_says_so(tmp_path: Path) -> None:
    root = copy_wrapper(tmp_path, "#!/bin/sh\necho 'Python 3.11 or newer is needed' >&2\nexit 1\n")
    result = subprocess.run([SH, "scripts/postdeploy.sh"], cwd=root, capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin"}, check=False)  # fmt: skip
    assert_clean_failure(result, "could not create .venv", "Python 3.11 or newer is needed")


# ---- deployment names ---------------------------------------------------------------------------------


@pytest.mark.parametrize("environment", ["dev", "a" * 64, "prod-westeurope-2"])
def test_deployment_names_carry_the_environment_and_fit_arm(environment: str) -> None:
    purposes = ("system-topic", "eventgrid-subscriptions", "acs-sender-assignment")
    names = {deployment_name(environment, p) for p in purposes}
    assert len(names) == 3
    for name in names:
        assert len(name) <= 64 and name.startswith(f"{PROJECT}-{environment[:20]}")
    assert deployment_name("dev", "system-topic") != deployment_name("prod", "system-topic")
    assert deployment_name("a" * 64, "x") != deployment_name("a" * 63 + "b", "x")


def test_every_hook_template_is_deployed_under_its_own_name() -> None:
    source = "\n".join(p.read_text() for p in (REPO_ROOT / "deploy").glob("*.py"))
    purposes = {p.stem for p in (REPO_ROOT / "infra" / "hooks").glob("*.bicep")}
    assert len(purposes) == 6
    # A purpose deployed once per source names its template: `template="eventgrid-subscriptions"`.
    deployed_purposes = set(re.findall(r'deploy_group\(\s*cli,\s*env,\s*"([\w-]+)"', source))
    deployed_purposes |= set(re.findall(r'template="([\w-]+)"', source))
    assert deployed_purposes == purposes


# ---- postdeploy: the optional sources (storage accounts, policy states, resource events) ---------------

DATA_ID = f"/subscriptions/{OTHER_SUB}/resourceGroups/rg-data/providers/Microsoft.Storage/storageAccounts/stdata"
LAKE_ID = f"/subscriptions/{APP_SUB}/resourceGroups/rg-lake/providers/Microsoft.Storage/storageAccounts/stlake"
LAKE_TOPIC = f"/subscriptions/{APP_SUB}/resourceGroups/rg-lake/providers/Microsoft.EventGrid/systemTopics/lake-events"


def test_postdeploy_subscribes_the_sources_outside_the_app_group_with_dead_letters(azure: Azure) -> None:
    provisioned(
        azure,
        DATA_STORAGE_ACCOUNT_IDS=f"{DATA_ID}, {LAKE_ID}",
        POLICY_EVENTS_SUBSCRIPTION_ID=APP_SUB,
        RESOURCE_EVENTS_SCOPE=f"/subscriptions/{APP_SUB}/resourceGroups/rg-ml",
    )
    azure.answer("event-subscription", "list", stdout=[])
    existing = {"id": LAKE_TOPIC, "source": LAKE_ID, "location": "northeurope", "tags": {"owner": "data"}}
    azure.answer("system-topic", "list", stdout=[existing])
    azure.answer("resource", "show", "--ids", DATA_ID, stdout={"location": "westus2"})
    principal = "bbbbbbbb-0000-0000-0000-000000000002"
    azure.answer("deployment", "group", "create", stdout=deployed({"principalId": principal}))

    result = run(azure, "postdeploy")

    assert result.returncode == 0, result.stderr
    calls = {c.option("--name"): c for c in deployments(azure)}
    topic = calls[deployment_name(ENV, "topic-data-stdata")]
    assert (topic.option("--subscription"), topic.option("--resource-group")) == (OTHER_SUB, "rg-data")
    assert topic.parameters == {
        "name": "evgt-stdata", "location": "westus2", "sourceId": DATA_ID,
        "topicType": "Microsoft.Storage.StorageAccounts", "tags": {f"{PROJECT}-{ENV}": "created"},
        "identity": {"type": "SystemAssigned"}, "adopted": False,
    }  # fmt: skip
    adopted = calls[deployment_name(ENV, "topic-data-stlake")].parameters
    assert (adopted["name"], adopted["location"], adopted["adopted"]) == ("lake-events", "northeurope", True)
    assert adopted["tags"] == {"owner": "data", f"{PROJECT}-{ENV}": "adopted"}
    policy = calls[deployment_name(ENV, "topic-policy")]
    assert policy.option("--resource-group") == "rg-ml"  # the workspace's: a subscription-wide topic
    assert policy.parameters["sourceId"] == f"/subscriptions/{APP_SUB}"
    assert (policy.parameters["topicType"], policy.parameters["location"]) == (
        "Microsoft.PolicyInsights.PolicyStates", "global",
    )  # fmt: skip
    resources = calls[deployment_name(ENV, "topic-resources")].parameters
    assert resources["topicType"] == "Microsoft.Resources.ResourceGroups"
    for key, prefix in (("data-stdata", "Microsoft.Storage."), ("policy", "Microsoft.PolicyInsights."),
                        ("resources", "Microsoft.Resources.")):  # fmt: skip
        dead_letters = calls[deployment_name(ENV, f"deadletter-{key}")]
        assert (dead_letters.option("--subscription"), dead_letters.option("--resource-group")) == (APP_SUB, APP_RG)
        assert dead_letters.option("--template-file").endswith("infra/hooks/../app/deadletter-rbac.bicep")
        assert dead_letters.parameters["topicIdentityPrincipalId"] == principal
        subscriptions = calls[deployment_name(ENV, f"subscriptions-{key}")]
        assert subscriptions.parameters["eventTypePrefix"] == prefix
        assert subscriptions.parameters["deadLetterStorageAccountId"] == STORAGE_ID
        assert set(subscriptions.parameters["filters"]) == set(FUNCTIONS)
    assert calls[deployment_name(ENV, "subscriptions-data-stdata")].parameters["systemTopicName"] == "evgt-stdata"
    assert "eventTypePrefix" not in calls[deployment_name(ENV, "eventgrid-subscriptions")].parameters
    assert not [c for c in deployments(azure) if c.option("--resource-group") == APP_RG and "deadletter" not in
                c.option("--name")]  # fmt: skip


@pytest.mark.parametrize(
    ("settings", "phrase"),
    [
        ({"DATA_STORAGE_ACCOUNT_IDS": "/subscriptions/x/resourceGroups/y"}, "DATA_STORAGE_ACCOUNT_IDS is not"),
        ({"POLICY_EVENTS_SUBSCRIPTION_ID": "my-subscription"}, "POLICY_EVENTS_SUBSCRIPTION_ID is not"),
        ({"RESOURCE_EVENTS_SCOPE": "/subscriptions/x/resourceGroups"}, "RESOURCE_EVENTS_SCOPE is not"),
        ({"POLICY_EVENTS_SUBSCRIPTION_ID": OTHER_SUB}, "set SOURCE_TOPICS_RESOURCE_GROUP"),
    ],
)
def test_a_malformed_source_setting_is_named(azure: Azure, settings: dict[str, str], phrase: str) -> None:
    provisioned(azure, **settings)
    azure.answer("event-subscription", "list", stdout=[])
    azure.answer("deployment", "group", "create", stdout=deployed({}))
    assert_clean_failure(run(azure, "postdeploy"), phrase)


def test_teardown_removes_the_source_topics_this_environment_created(azure: Azure) -> None:
    provisioned(azure, DATA_STORAGE_ACCOUNT_IDS=DATA_ID)
    data_topic = topic_id(OTHER_SUB, "rg-data", "evgt-stdata")
    azure.answer("event-subscription", "list", "evgt-stdata", stdout=[])
    azure.answer("system-topic", "list", "--subscription", OTHER_SUB, stdout=[{"id": data_topic, "source": DATA_ID}])
    azure.answer("show", deployment_name(ENV, "subscriptions-data-stdata"), stdout=record(f"{data_topic}/x"))
    azure.answer("show", deployment_name(ENV, "topic-data-stdata"), stdout=record(data_topic, adopted=False))
    azure.answer("resource", "show", data_topic, stdout={"id": data_topic, "tags": {f"{PROJECT}-{ENV}": "created"}})
    answer_records(azure, adopted=False, topic_tags={f"{PROJECT}-{ENV}": "created"}, others=[])

    result = run(azure, "teardown", "--yes")

    assert result.returncode == 0, result.stderr
    assert "system topic evgt-stdata (created by this environment)" in result.stdout
    deleted = [c.option("--ids") for c in azure.calls() if c.has("resource", "delete")]
    assert data_topic in deleted and topic_id() in deleted
    records = {c.option("--name") for c in azure.calls() if c.has("deployment", "group", "delete")}
    assert {deployment_name(ENV, "topic-data-stdata"), deployment_name(ENV, "subscriptions-data-stdata")} <= records
