"""6. Memory: the peak RSS of a fresh worker that has handled every sample event in tests/events (log
and webhook actions, ledger on Azurite, bad events rejected and recorded), without and with a pipeline
action's azure.ai.ml; against the baseline app forwarding the same events. A Flex Consumption
instance has 512 MB (or 2 GB); the host process needs its share."""

from __future__ import annotations

from pathlib import Path

from bench.support import ROOT, Figure, Lab, run_worker

WITHOUT_PIPELINE_MIB, WITH_PIPELINE_MIB = 150, 350

WEBHOOK_ROUTE = """
  - name: every-failure-to-a-webhook
    events: [RunStatusChanged]
    actions:
      - webhook: {url: "${HOOK_URL}/memory", allow_private: true}
"""


def run(lab: Lab) -> list[Figure]:
    receiver = lab.receiver()
    routes = Path(ROOT / "routes.yaml").read_text() + WEBHOOK_ROUTE
    settings = lab.app_settings(routes, HOOK_URL=receiver.url, BASELINE_URL=f"{receiver.url}/baseline")
    baseline = run_worker("memory", "--baseline", settings=settings)["peak_rss_mib"]
    without = run_worker("memory", settings=settings)["peak_rss_mib"]
    with_pipeline = run_worker("memory", "--pipeline", settings=settings)["peak_rss_mib"]
    return [
        Figure("6 memory", "peak RSS, sample events, no pipeline action", without, "MiB", baseline,
               "baseline app", f"< {WITHOUT_PIPELINE_MIB} MiB", without < WITHOUT_PIPELINE_MIB),
        Figure("6 memory", "peak RSS, sample events + azure.ai.ml (pipeline action)", with_pipeline, "MiB", baseline,
               "baseline app", f"< {WITH_PIPELINE_MIB} MiB", with_pipeline < WITH_PIPELINE_MIB),
    ]  # fmt: skip
