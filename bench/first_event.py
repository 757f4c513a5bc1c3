"""2. First event: a fresh worker imports and indexes the app, then handles one event end to end
(ledger on Azurite, one `webhook` action to a loopback receiver), against the baseline app posting
the same event JSON with httpx. The ledger tables exist already, as they do after the first deployment, and
both apps' Python is byte-compiled. Runs alternate app and baseline so that drift on the machine hits both."""

from __future__ import annotations

import json

from bench.support import Figure, Lab, compile_sources, event_with_id, median, run_worker, sample_event

TARGET = 2.0

ROUTES = """
routes:
  - name: first-event
    events: [RunStatusChanged]
    actions:
      - webhook: {url: "${HOOK_URL}/first", allow_private: true}
"""


def run(lab: Lab) -> list[Figure]:
    repetitions = lab.count(15, 2)
    receiver = lab.receiver()
    settings = lab.app_settings(ROUTES, HOOK_URL=receiver.url, BASELINE_URL=f"{receiver.url}/baseline")
    template = sample_event()

    def first_event(*flags: str) -> float:
        path = lab.directory / "first-event.json"
        path.write_text(json.dumps(event_with_id(template)))
        return run_worker("first-event", str(path), *flags, settings=settings)["seconds"]

    compile_sources()
    first_event(), first_event("--baseline")  # creates the ledger tables, warms the page cache
    receiver.reset()
    app, baseline = [], []
    for _ in range(repetitions):
        app.append(first_event())
        baseline.append(first_event("--baseline"))
    delivered = receiver.stats()["requests"]
    figure = Figure(
        "2 first event", f"fresh worker: import, index, one webhook event with ledger; median of {repetitions}",
        median(app) * 1000, "ms", median(baseline) * 1000, "baseline app posting with httpx", f"≤ {TARGET:g}×",
    )  # fmt: skip
    figure.met = figure.ratio <= TARGET and delivered == 2 * repetitions
    if delivered != 2 * repetitions:
        figure.note = f"receiver got {delivered} of {2 * repetitions} posts"
    return [figure]
