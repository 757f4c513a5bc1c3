"""What the tests of the CI/CD action kinds (github, azure_devops, eventgrid) share: the app made to trust
the local HTTPS fakes as it trusts public CAs, and route problems collected without delivering anything."""

from __future__ import annotations

import pytest

from handlers.common import http
from shared.platform import tls
from shared.routing.routes import RoutesError
from shared.worker import parse_routes


def trust(monkeypatch: pytest.MonkeyPatch, ca_bundle: str) -> None:
    """Both HTTP stacks trust the fakes' certificate: httpx (GitHub, Azure DevOps) through the worker's
    TLS context made from SSL_CERT_FILE, azure-core's requests transport (Event Grid) REQUESTS_CA_BUNDLE."""
    monkeypatch.setenv("SSL_CERT_FILE", ca_bundle)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ca_bundle)
    monkeypatch.setattr(tls, "_context", None)
    monkeypatch.setattr(http, "_client", None)


def route_problems(text: str, **settings: str) -> list[str]:
    """The problems routes.yaml `text` has when loaded with these app settings (none: it loads)."""
    try:
        parse_routes(text, "routes.yaml", settings)
    except RoutesError as error:
        return error.problems
    return []
