"""shared/settings.py: a Key Vault reference the platform did not resolve is an unset setting, named
in an error, never a URL or secret the app would use."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.routing.routes import RoutesError
from shared.settings import Settings, unresolved_key_vault_references
from shared.worker import parse_routes

REFERENCE = "@Microsoft.KeyVault(SecretUri=https://kv-abc.vault.azure.net/secrets/teams-webhook-url)"
ROUTE = """routes:
  - name: teams
    events: [RunStatusChanged]
    actions:
      - webhook:
          url: "${TEAMS_WEBHOOK_URL}"
"""


def test_an_unresolved_reference_is_unset_and_named_in_an_error(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="aml_events.settings"):
        settings = Settings.from_environ({"TEAMS_WEBHOOK_URL": REFERENCE, "ACS_ENDPOINT": "https://acs.example"})
    assert "TEAMS_WEBHOOK_URL" not in settings.environ
    assert settings.environ["ACS_ENDPOINT"] == "https://acs.example"
    assert settings.unresolved_references == ("TEAMS_WEBHOOK_URL",)
    (record,) = caplog.records
    assert "TEAMS_WEBHOOK_URL" in record.getMessage() and "Key Vault reference" in record.getMessage()
    assert "vault.azure.net" not in record.getMessage()


def test_a_route_using_it_fails_to_load_naming_the_setting() -> None:
    settings = Settings.from_environ({"TEAMS_WEBHOOK_URL": REFERENCE})
    with pytest.raises(RoutesError) as raised:
        parse_routes(ROUTE, "routes.yaml", settings.environ)
    assert "the app setting TEAMS_WEBHOOK_URL is not set" in str(raised.value)


def test_the_resolved_value_is_used() -> None:
    settings = Settings.from_environ({"TEAMS_WEBHOOK_URL": "https://example.webhook.office.com/x"})
    table = parse_routes(ROUTE, "routes.yaml", settings.environ)
    assert settings.unresolved_references == () and table.routes


@pytest.mark.parametrize(
    "value",
    [REFERENCE, "@microsoft.keyvault(VaultName=kv;SecretName=s)", "  @Microsoft.KeyVault(SecretUri=x)"],
)
def test_every_spelling_of_a_reference_is_recognised(value: str) -> None:
    assert unresolved_key_vault_references({"X": value}) == ("X",)


def test_a_setting_with_a_default_falls_back_to_it() -> None:
    assert Settings.from_environ({"DEAD_LETTER_CONTAINER": REFERENCE}).dead_letter_container == "deadletter"


@given(st.dictionaries(st.from_regex(r"[A-Z_]{1,12}", fullmatch=True), st.text(max_size=40)))
def test_any_other_value_is_kept_as_is(environ: dict[str, str]) -> None:
    environ = {k: v for k, v in environ.items() if not v.lstrip().lower().startswith("@microsoft.keyvault(")}
    assert Settings.from_environ(environ).environ == environ


def test_worker_threads_follow_the_workers_setting_or_its_default() -> None:
    import os

    assert Settings.from_environ({"PYTHON_THREADPOOL_THREAD_COUNT": "48"}).worker_threads == 48
    default = min(32, (os.cpu_count() or 1) + 4)
    assert Settings.from_environ({}).worker_threads == default
    assert Settings.from_environ({"PYTHON_THREADPOOL_THREAD_COUNT": "many"}).worker_threads == default
