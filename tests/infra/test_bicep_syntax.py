"""Every template parses (no Bicep compiler can be installed here: tree-sitter-bicep and pycep-parser
catch syntax errors, not semantic ones; see docs/deploy.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.infra.bicep_support import BICEP_FILES, parsed, relative, syntax_errors


def test_the_templates_are_found() -> None:
    names = {relative(path) for path in BICEP_FILES}
    assert {"infra/main.bicep", "infra/hooks/eventgrid-subscriptions.bicep", "infra/app/function-app.bicep"} <= names


@pytest.mark.parametrize("path", BICEP_FILES, ids=relative)
def test_tree_sitter_finds_no_error_or_missing_node(path: Path) -> None:
    assert syntax_errors(path.read_bytes()) == []


@pytest.mark.parametrize("path", BICEP_FILES, ids=relative)
def test_pycep_parses(path: Path) -> None:
    assert parsed(path)  # raises on a syntax error; checkov reads templates with this parser


def test_a_broken_template_is_caught() -> None:
    broken = b"param name string\nresource st 'Microsoft.Storage/storageAccounts@2025-01-01' {\n  name: name\n"
    assert syntax_errors(broken)
