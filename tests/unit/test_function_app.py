"""The function app's index: the four Event Grid functions the infrastructure and Core Tools refer to,
and the timers that deliver digests and act on missed expectations."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from shared.events.catalog import FUNCTION_EVENT_TYPES, FUNCTION_FOR_EVENT_TYPE, short_event_type

ROOT = Path(__file__).resolve().parents[2]


def test_the_app_registers_the_event_grid_functions_and_the_two_timers() -> None:
    script = (
        "import json, function_app\n"
        "print(json.dumps({f.get_function_name(): json.loads(f.get_function_json())['bindings'] "
        "for f in function_app.app.get_functions()}))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=True)
    functions = json.loads(result.stdout.strip().splitlines()[-1])
    timer = functions.pop("flush_digests")
    expectations = functions.pop("check_expectations")
    assert list(functions) == list(FUNCTION_EVENT_TYPES)  # one function per entry of shared/functions.json
    assert list(functions) == ["run_events", "model_registered", "model_deployed", "drift_detected",
                               "data_events", "policy_events", "resource_events"]  # fmt: skip
    for bindings in functions.values():
        assert bindings == [{"direction": "IN", "type": "eventGridTrigger", "name": "event"}]
    # Every minute (NCRONTAB has seconds first): a group waits at most its `wait` plus a minute.
    assert timer == [{"direction": "IN", "type": "timerTrigger", "name": "timer", "schedule": "0 * * * * *",
                      "runOnStartup": False}]  # fmt: skip
    # Every minute too, half a minute apart from the digests: a missed expectation acts within a minute.
    assert expectations == [{"direction": "IN", "type": "timerTrigger", "name": "timer",
                             "schedule": "30 * * * * *", "runOnStartup": False}]  # fmt: skip


def test_the_catalog_maps_every_event_type_once() -> None:
    assert FUNCTION_EVENT_TYPES == {
        "run_events": (
            "Microsoft.MachineLearningServices.RunCompleted",
            "Microsoft.MachineLearningServices.RunStatusChanged",
        ),
        "model_registered": ("Microsoft.MachineLearningServices.ModelRegistered",),
        "model_deployed": ("Microsoft.MachineLearningServices.ModelDeployed",),
        "drift_detected": ("Microsoft.MachineLearningServices.DatasetDriftDetected",),
        "data_events": ("Microsoft.Storage.BlobCreated", "Microsoft.Storage.BlobDeleted"),
        "policy_events": tuple(f"Microsoft.PolicyInsights.PolicyState{s}" for s in ("Created", "Changed", "Deleted")),
        "resource_events": tuple(
            f"Microsoft.Resources.Resource{op}{outcome}"
            for op in ("Write", "Delete", "Action")
            for outcome in ("Success", "Failure", "Cancel")
        ),
    }
    assert len(FUNCTION_FOR_EVENT_TYPE) == sum(map(len, FUNCTION_EVENT_TYPES.values()))
    assert len({short_event_type(t) for t in FUNCTION_FOR_EVENT_TYPE}) == len(FUNCTION_FOR_EVENT_TYPE)  # routes' names


def test_importing_the_app_does_not_import_azure_ai_ml() -> None:
    # azure.ai.ml costs over a second and ~100 MB at every cold start; it loads when a pipeline runs.
    script = "import sys, function_app; function_app.app.get_functions(); print('azure.ai.ml' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip().splitlines()[-1] == "False"


def test_host_json_uses_extension_bundle_4() -> None:
    host = json.loads((ROOT / "host.json").read_text())
    assert host["version"] == "2.0"
    assert host["extensionBundle"]["version"] == "[4.*, 5.0.0)"
