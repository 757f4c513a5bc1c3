"""postprovision: the app's roles on the workspace (and on an existing ACS resource), the optional
Azure ML policies, then the app's Key Vault references refreshed."""

from __future__ import annotations

from deploy.azcli import Cli
from deploy.common import ROLE_NOT_REPLICATED, Env, deploy_group, setting


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
