"""What the tests of the CI/CD action kinds (github, azure_devops, eventgrid) share: the app made to trust
the local HTTPS fakes as it trusts public CAs, and route problems collected without delivering anything."""

from __future__ import annotations

import time

import pytest

from handlers.common import http
from shared.actions import ActionContext
from shared.platform import tls
from shared.routing.routes import RoutesError
from shared.settings import Settings
from shared.templates import example_events
from shared.worker import parse_routes


def trust(monkeypatch: pytest.MonkeyPatch, ca_bundle: str) -> None:
    """Both HTTP stacks trust the fakes' certificate: httpx (GitHub, Azure DevOps) through the worker's
    TLS context made from SSL_CERT_FILE, azure-core's requests transport (Event Grid) REQUESTS_CA_BUNDLE."""
    monkeypatch.setenv("SSL_CERT_FILE", ca_bundle)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ca_bundle)
    monkeypatch.setattr(tls, "_context", None)
    monkeypatch.setattr(http, "_client", None)


def example_app_key() -> str:
    """A GitHub App private key as its app setting holds it (PEM), made once per process."""
    global _app_key
    if _app_key is None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _app_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                     serialization.NoEncryption()).decode()  # fmt: skip
    return _app_key


_app_key: str | None = None


def route_problems(text: str, **settings: str) -> list[str]:
    """The problems routes.yaml `text` has when loaded with these app settings (none: it loads)."""
    try:
        parse_routes(text, "routes.yaml", settings)
    except RoutesError as error:
        return error.problems
    return []


def action_context(key: str = "key") -> ActionContext:
    """What an action runs with, for the example ModelRegistered event, outside any delivery."""
    event = example_events()["Microsoft.MachineLearningServices.ModelRegistered"]
    return ActionContext(event, "route", 0, key, time.monotonic() + 60, Settings.from_environ({}))
