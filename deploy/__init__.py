"""The azd hooks: everything the app deploys outside its own resource group.

`azd down` deletes every resource group that azd's own deployment (infra/main.bicep) put a
resource into, so main.bicep stays inside the app's resource group and these hooks deploy the
rest (workspace role, system topic, event subscriptions, policy assignments, roles on an
existing ACS resource) with `az deployment group create`, under deployment names unique per
environment. scripts/teardown.* removes exactly that. Run as `python -m deploy HOOK`; the
scripts/*.sh and *.ps1 wrappers only find the project's .venv. One module per hook; what they
share is in common, topics (system topics) and sources (the optional event sources). See
docs/deploy.md.
"""
