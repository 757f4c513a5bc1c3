"""Beyond test_samples.py: the YAML samples of docs/cicd.md work together. The GitHub workflow listens for
the event type the route dispatches and reads only the payload the route sends; the Azure Pipelines YAML
declares every parameter the route sends."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.worker import parse_routes
from tests.support.cicd import example_app_key, route_problems

DOC = Path(__file__).resolve().parents[2] / "docs" / "cicd.md"
BLOCKS = re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)


def settings() -> dict[str, str]:
    return {"GITHUB_APP_KEY": example_app_key(), "GITHUB_TOKEN": "t", "ADO_PAT": "p",
            "FORWARD_TOPIC_ENDPOINT": "https://t.westus-1.eventgrid.azure.net/api/events"}  # fmt: skip


def samples(kind: str) -> list[Any]:
    """The YAML blocks that are routes (`routes:`), GitHub workflows (`jobs:`) or Azure pipelines (`steps:`)."""
    found = []
    for block in BLOCKS:
        document = yaml.safe_load(block)
        if kind in document:
            found.append(document)
    return found


def first_action(document: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    ((kind, options),) = document["routes"][0]["actions"][0].items()
    return kind, options


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.startswith("routes:")])
def test_every_route_sample_loads(block: str) -> None:
    assert route_problems(block, **settings()) == []


def test_the_workflow_listens_for_the_dispatched_event_type_and_reads_the_payload_sent() -> None:
    (workflow,) = samples("jobs")
    trigger = workflow.get("on", workflow.get(True))  # YAML 1.1 reads the key `on` as true
    routes = [first_action(r) for r in samples("routes")]
    dispatches = [options["dispatch"] for kind, options in routes if kind == "github" and "dispatch" in options]
    assert dispatches and all(d["event_type"] in trigger["repository_dispatch"]["types"] for d in dispatches)
    used = set(re.findall(r"github\.event\.client_payload\.(\w+)", yaml.safe_dump(workflow)))
    for dispatch in dispatches:
        assert used <= {*dispatch["client_payload"], "ledger_key"}, used


def test_the_pipeline_declares_every_parameter_the_route_sends() -> None:
    (pipeline,) = samples("steps")
    declared = {parameter["name"] for parameter in pipeline["parameters"]}
    routes = [first_action(r) for r in samples("routes")]
    (options,) = [options for kind, options in routes if kind == "azure_devops"]
    assert declared == {*options["parameters"], "ledger_key"}
    table = parse_routes(next(b for b in BLOCKS if "azure_devops" in b), "docs", settings())
    assert table.routes[0].actions[0].action.key_parameter == "ledger_key"
