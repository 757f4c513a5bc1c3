"""App settings (environment variables / Function app settings), read once per worker.

Secrets (connection strings, signing secrets, webhook URLs) come from settings or Key Vault
references resolved by the platform; nothing here logs them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

APP_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    routes_file: Path
    storage_connection: str  # prefix of the storage connection settings, as the Functions host uses
    ledger_table: str
    rejected_table: str
    lease_seconds: float
    invocation_budget_seconds: float
    dead_letter_container: str
    environ: Mapping[str, str]

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        routes = Path(env.get("ROUTES_FILE") or "routes.yaml")
        return cls(
            routes_file=routes if routes.is_absolute() else APP_ROOT / routes,
            storage_connection=env.get("LEDGER_CONNECTION") or "AzureWebJobsStorage",
            ledger_table=env.get("LEDGER_TABLE") or "actionledger",
            rejected_table=env.get("REJECTED_TABLE") or "rejectedevents",
            lease_seconds=float(env.get("LEDGER_LEASE_SECONDS") or 300),
            invocation_budget_seconds=float(env.get("INVOCATION_BUDGET_SECONDS") or 20),
            dead_letter_container=env.get("DEAD_LETTER_CONTAINER") or "deadletter",
            environ=env,
        )


@lru_cache(maxsize=1)
def current_settings() -> Settings:
    """The worker's settings; tests and scripts that change the environment call cache_clear()."""
    return Settings.from_environ()
