"""Which log lines leave the worker: the app's own (`aml_events.*`) at the host's level, libraries'
from WARNING.

The Python worker forwards the root logger at INFO to the host, and from there to Application
Insights. Left alone, httpx logs every request URL at INFO (query tokens, userinfo, Teams' `sig=`)
and azure-core's HTTP logging policy logs every storage call: cost, noise and a secret leak.
"""

from __future__ import annotations

import logging

# Top-level loggers of the libraries the app and its SDKs use (a child inherits the level).
LIBRARY_LOGGERS = (
    "azure", "httpx", "httpcore", "urllib3", "requests", "msal", "msrest", "opentelemetry", "hpack", "h2",
    "asyncio", "charset_normalizer", "jinja2", "yaml", "mlflow", "marshmallow", "filelock", "isodate",
)  # fmt: skip


def configure_logging() -> None:
    """Called once when the engine loads. Levels only: the host's handlers, format and the level of the
    app's own lines (the root's, as the host sets it) stay as they are."""
    for name in LIBRARY_LOGGERS:
        library = logging.getLogger(name)
        if library.level == logging.NOTSET or library.level < logging.WARNING:
            library.setLevel(logging.WARNING)
