"""App settings (environment variables / Function app settings), read once per worker: every setting
the app reads is a typed field here. `environ` keeps the whole environment for what routes.yaml names
itself (`${SETTING}` substitution), which no fixed list can hold.

Secrets (connection strings, signing secrets, webhook URLs) come from settings or Key Vault
references resolved by the platform; nothing here logs them. A reference the platform could not
resolve (the app identity's role not yet propagated, the secret missing) reaches the app as its
literal `@Microsoft.KeyVault(...)` text: such a setting is treated as unset, with an error naming it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

APP_ROOT = Path(__file__).resolve().parent.parent
KEY_VAULT_REFERENCE = "@microsoft.keyvault("

logger = logging.getLogger("aml_events.settings")


def unresolved_key_vault_references(environ: Mapping[str, str]) -> tuple[str, ...]:
    """Names of the settings whose value is still a Key Vault reference (the platform did not resolve it)."""
    return tuple(sorted(n for n, value in environ.items() if value.lstrip().lower().startswith(KEY_VAULT_REFERENCE)))


@dataclass(frozen=True)
class Settings:
    routes_file: Path
    storage_connection: str  # prefix of the storage connection settings, as the Functions host uses
    ledger_table: str
    rejected_table: str
    guardrail_table: str  # cooldown / max_per_day counters of the pipeline actions
    rejected_container: str  # full payloads of rejected events too large for a table property
    lease_seconds: float
    invocation_budget_seconds: float
    dead_letter_container: str
    digest_table: str  # open groups and their members (route `group:`)
    expect_table: str  # open expectations, indexed by due minute (route `expect:`)
    silence_table: str  # ad-hoc silences (scripts/silence.py)
    silence_cache_seconds: float  # how long a worker reuses the silences it read
    enrich_timeout_seconds: float  # the most a route with `enrich: true` waits for details
    # Storage as the Functions host reads `<storage_connection>`: a connection string, or (managed identity)
    # `__tableServiceUri` / `__blobServiceUri` / `__accountName` and `__clientId`.
    storage_connection_string: str
    table_service_uri: str
    blob_service_uri: str
    storage_account_name: str
    storage_client_id: str
    client_id: str  # AZURE_CLIENT_ID: the app's user-assigned managed identity; "": the system-assigned one
    acs_endpoint: str  # email through Azure Communication Services (handlers/email/acs.py)
    acs_connection_string: str
    acs_access_key: str
    email_sender: str
    email_outbox: Path  # .eml files when ACS is not configured
    worker_threads: int  # PYTHON_THREADPOOL_THREAD_COUNT: how many deliveries the Python worker runs at once
    environ: Mapping[str, str]  # without the unresolved Key Vault references
    unresolved_references: tuple[str, ...] = ()  # settings left out of environ, by name

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        unresolved = unresolved_key_vault_references(env)
        for name in unresolved:
            # The name only: the reference itself says which vault and secret, not a value, but stays out too.
            logger.error(
                "App setting %s is a Key Vault reference that did not resolve; treated as unset. Check the app "
                "identity's Key Vault Secrets User role and the secret, then refresh the references "
                "(azd hooks run postprovision) or restart the app.",
                name,
            )
            del env[name]
        routes = Path(env.get("ROUTES_FILE") or "routes.yaml")
        outbox = Path(env.get("EMAIL_OUTBOX") or "outbox")
        storage = env.get("LEDGER_CONNECTION") or "AzureWebJobsStorage"
        return cls(
            routes_file=routes if routes.is_absolute() else APP_ROOT / routes,
            storage_connection=storage,
            ledger_table=env.get("LEDGER_TABLE") or "actionledger",
            rejected_table=env.get("REJECTED_TABLE") or "rejectedevents",
            guardrail_table=env.get("GUARDRAIL_TABLE") or "actionguardrails",
            rejected_container=env.get("REJECTED_CONTAINER") or "rejected",
            lease_seconds=float(env.get("LEDGER_LEASE_SECONDS") or 300),
            invocation_budget_seconds=float(env.get("INVOCATION_BUDGET_SECONDS") or 20),
            dead_letter_container=env.get("DEAD_LETTER_CONTAINER") or "deadletter",
            digest_table=env.get("DIGEST_TABLE") or "digestgroups",
            expect_table=env.get("EXPECT_TABLE") or "expectations",
            silence_table=env.get("SILENCE_TABLE") or "silences",
            silence_cache_seconds=float(env.get("SILENCE_CACHE_SECONDS") or 15),
            enrich_timeout_seconds=float(env.get("ENRICH_TIMEOUT_SECONDS") or 5),
            storage_connection_string=env.get(storage) or "",
            table_service_uri=env.get(f"{storage}__tableServiceUri") or "",
            blob_service_uri=env.get(f"{storage}__blobServiceUri") or "",
            storage_account_name=env.get(f"{storage}__accountName") or "",
            storage_client_id=env.get(f"{storage}__clientId") or "",
            client_id=(env.get("AZURE_CLIENT_ID") or "").strip(),
            acs_endpoint=(env.get("ACS_ENDPOINT") or "").strip(),
            acs_connection_string=(env.get("ACS_CONNECTION_STRING") or "").strip(),
            acs_access_key=(env.get("ACS_ACCESS_KEY") or "").strip(),
            email_sender=(env.get("EMAIL_SENDER") or "").strip(),
            email_outbox=outbox if outbox.is_absolute() else APP_ROOT / outbox,
            worker_threads=_worker_threads(env.get("PYTHON_THREADPOOL_THREAD_COUNT")),
            environ=env,
            unresolved_references=unresolved,
        )


def _worker_threads(written: str | None) -> int:
    """The Python worker's pool size for sync functions: the setting, else its default min(32, cores + 4)."""
    try:
        return max(1, int(written or ""))
    except ValueError:
        return min(32, (os.cpu_count() or 1) + 4)


@lru_cache(maxsize=1)
def current_settings() -> Settings:
    """The worker's settings; tests and scripts that change the environment call cache_clear()."""
    return Settings.from_environ()
