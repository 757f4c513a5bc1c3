"""Indexing the app (every cold start, before any event) must import only what indexing needs.

A fresh interpreter indexes the app, as the Functions host does, and we look at what got imported.
(tests/unit/test_function_app.py checks azure.ai.ml in particular.)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

INDEX_APP = "import function_app; function_app.app.get_functions()"


def modules_after(statement: str) -> set[str]:
    """The modules a fresh interpreter holds after running `statement` from the app's root."""
    script = f"import sys, json\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    return set(json.loads(result.stdout.splitlines()[-1]))


def test_indexing_imports_nothing_beyond_azure_functions_but_the_entry_seam() -> None:
    indexed = modules_after(INDEX_APP)
    extra = indexed - modules_after("import azure.functions")
    third_party = {name for name in extra if name.split(".")[0] not in sys.stdlib_module_names}
    assert third_party == {"function_app", "shared", "shared.entry"}
    for heavy in (
        "shared.worker",
        "shared.pipeline.engine",
        "httpx",
        "jinja2",
        "yaml",
        "azure.data.tables",
        "azure.identity",
    ):
        assert heavy not in indexed, f"indexing the app imported {heavy}; it belongs behind shared/entry.py"
