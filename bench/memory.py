"""6. Memory: the peak RSS of a fresh worker that has handled every sample event in tests/events (log
and webhook actions, ledger on Azurite, bad events rejected and recorded) and one more drift event,
without and with a route that starts a pipeline for that event (pipelines/retrain-on-drift.yml through
the real MLClient to the local Azure ML fake); against the baseline app forwarding the same events. A Flex
Consumption instance has 512 MB (or 2 GB); the host process needs its share."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from bench.support import ROOT, Figure, Lab, event_with_id, run_worker

if TYPE_CHECKING:
    from tests.support.azureml_fake import AzureMLFake

WITHOUT_PIPELINE_MIB, WITH_PIPELINE_MIB = 150, 350
DRIFT_SAMPLE = ROOT / "tests" / "events" / "eventgrid" / "dataset_drift_detected.json"
# The sample events hold drift events too: the pipeline route takes only the benchmark's own.
MONITOR = "memory-benchmark-monitor"
PIPELINE_ROUTE_NAME = "retrain-on-drift-benchmark"

WEBHOOK_ROUTE = """
  - name: every-failure-to-a-webhook
    events: [RunStatusChanged]
    actions:
      - webhook: {url: "${HOOK_URL}/memory", allow_private: true}
"""
PIPELINE_ROUTE = f"""
  - name: {PIPELINE_ROUTE_NAME}
    events: [DatasetDriftDetected]
    when:
      data.DataDriftName: {MONITOR}
    actions:
      - pipeline:
          job: pipelines/retrain-on-drift.yml
          experiment: retrain-on-drift
          inputs:
            drift_run_id: "{{{{ event.data.RunId }}}}"
            drift_coefficient: "{{{{ event.data.DriftCoefficient }}}}"
"""


def run(lab: Lab) -> list[Figure]:
    receiver = lab.receiver()
    fake = lab.azureml()
    fake.reset()
    drift = event_with_id(json.loads(DRIFT_SAMPLE.read_text())[0], DataDriftName=MONITOR)
    events = lab.directory / "memory-drift-event.json"
    events.write_text(json.dumps([drift]))

    routes = Path(ROOT / "routes.yaml").read_text() + WEBHOOK_ROUTE
    urls = {"HOOK_URL": receiver.url, "BASELINE_URL": f"{receiver.url}/baseline"}
    settings = lab.app_settings(routes, **urls)
    baseline = run_worker("memory", str(events), "--baseline", settings=settings)["peak_rss_mib"]
    without = run_worker("memory", str(events), settings=settings)["peak_rss_mib"]
    pipeline_settings = lab.app_settings(routes + PIPELINE_ROUTE, **urls)
    worker = run_worker("memory", str(events), "--azureml", fake.base_url, fake.ca_file, settings=pipeline_settings)
    with_pipeline = worker["peak_rss_mib"]
    job = started_job(fake, drift["id"], worker["outcomes"])
    return [
        Figure("6 memory", "peak RSS, sample events, no pipeline action", without, "MiB", baseline,
               "baseline app", f"< {WITHOUT_PIPELINE_MIB} MiB", without < WITHOUT_PIPELINE_MIB),
        Figure("6 memory", "peak RSS, sample events + 1 pipeline job started (MLClient → Azure ML fake)",
               with_pipeline, "MiB", baseline, "baseline app", f"< {WITH_PIPELINE_MIB} MiB",
               with_pipeline < WITH_PIPELINE_MIB, f"the fake received the PUT of pipeline job {job}"),
    ]  # fmt: skip


def started_job(fake: AzureMLFake, event_id: str, outcomes: dict[str, int]) -> str:
    """The name of the one pipeline job the worker started for `event_id`; an error unless the fake received
    its PUT and the worker recorded the action done: the figure must be of a worker that started a job."""
    from handlers.azureml.client import job_name_for

    name = job_name_for(f"{event_id}/{PIPELINE_ROUTE_NAME}/0", PIPELINE_ROUTE_NAME)
    puts = [(put.path.rsplit("/", 1)[1], put.body["properties"]["jobType"]) for put in fake.sent("PUT", r"/jobs/")]
    pipelines = {outcome: count for outcome, count in outcomes.items() if outcome.startswith("pipeline ")}
    if puts != [(name, "Pipeline")] or pipelines != {"pipeline done": 1}:
        seen = [f"{request.method} {request.path}" for request in fake.requests]
        raise RuntimeError(
            f"memory: expected one pipeline job {name} started; the worker's pipeline actions: {pipelines}, "
            f"the Azure ML fake received {seen}"
        )
    return name
