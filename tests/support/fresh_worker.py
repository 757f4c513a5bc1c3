"""A fresh worker (a new interpreter, as the Functions host starts one) handling its first event: what it
imported and which outcomes it logged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from tests.support.events import load_event

ROOT = Path(__file__).resolve().parent.parent.parent

FIRST_EVENT = """
import json, logging, sys
outcomes = []
class Outcomes(logging.Handler):
    def emit(self, record):
        if record.getMessage().startswith("action "):
            outcomes.append(record.getMessage().split(":")[0])
logging.getLogger("aml_events").addHandler(Outcomes())
logging.getLogger("aml_events").setLevel(logging.INFO)
import function_app
from scripts.local_host import binding_for
functions = {f.get_function_name(): f.get_user_function() for f in function_app.app.get_functions()}
functions["run_events"](binding_for(json.loads(sys.argv[1])))
print(json.dumps({"modules": sorted(sys.modules), "outcomes": outcomes}))
"""

# Never on a first event like this one: the SDK's default transport, templates, other SDKs.
NEVER_HERE = {"requests", "urllib3", "jinja2", "azure.identity", "azure.storage.blob", "azure.ai.ml"}


def first_event(storage: str | dict[str, str], tmp_path: Path, routes: str) -> dict[str, Any]:
    """What a fresh worker imported and logged handling one RunStatusChanged event with `routes`; `storage`
    is a connection string, or the app settings of keyless storage."""
    suffix = uuid.uuid4().hex[:10]
    path = tmp_path / f"routes-{suffix}.yaml"
    path.write_text(routes)
    storage_settings = {"AzureWebJobsStorage": storage} if isinstance(storage, str) else storage
    env = {
        **{name: value for name, value in os.environ.items() if not name.startswith("AzureWebJobsStorage")},
        **storage_settings, "ROUTES_FILE": str(path), "LEDGER_TABLE": f"ledger{suffix}",
        "REJECTED_TABLE": f"rejected{suffix}", "DIGEST_TABLE": f"digests{suffix}",
    }  # fmt: skip
    event = load_event("eventgrid/run_status_changed_failed.json") | {"id": f"first-{suffix}"}
    result = subprocess.run(
        [sys.executable, "-c", FIRST_EVENT, json.dumps(event)], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


PLAIN_ROUTES = "routes:\n  - name: plain\n    events: [RunStatusChanged]\n    actions: [log]\n"
