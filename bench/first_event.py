"""2. First event: a fresh worker imports and indexes the app, then handles one event end to end
(ledger on Azurite, one `webhook` action to a loopback receiver), against the baseline app posting
the same event JSON with httpx. The ledger tables exist already, as they do after the first deployment, and
both apps' Python is byte-compiled. Runs alternate app and baseline so that drift on the machine hits both.

Two configurations of the app's storage: a connection string (Azurite's key), and keyless as deployed
(infra/ disables keys): `AzureWebJobsStorage__tableServiceUri`/`__clientId`, so the worker also imports
azure.identity and fetches a token of its managed identity from the identity endpoint (a local one,
tests/support/identity_endpoint.py) for an Azurite that serves HTTPS and checks it."""

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
    keyless_settings = lab.app_settings(ROUTES, keyless=True, HOOK_URL=receiver.url)
    identity = lab.keyless().identity
    template = sample_event()

    def first_event(app_settings: dict[str, str], *flags: str) -> float:
        path = lab.directory / "first-event.json"
        path.write_text(json.dumps(event_with_id(template)))
        return run_worker("first-event", str(path), *flags, settings=app_settings)["seconds"]

    compile_sources()
    # Creates the ledger tables, warms the page cache.
    first_event(settings), first_event(keyless_settings), first_event(settings, "--baseline")
    receiver.reset()
    identity.forget()
    app, keyless, baseline = [], [], []
    for _ in range(repetitions):
        app.append(first_event(settings))
        keyless.append(first_event(keyless_settings))
        baseline.append(first_event(settings, "--baseline"))
    delivered = receiver.stats()["requests"]
    tokens = len(identity.asked())
    figures = [
        Figure(
            "2 first event", f"fresh worker: import, index, one webhook event with ledger; median of {repetitions}",
            median(app) * 1000, "ms", median(baseline) * 1000, "baseline app posting with httpx", f"≤ {TARGET:g}×",
        ),
        Figure(
            "2 first event", "the same, keyless storage as deployed (managed identity token from a local identity "
            f"endpoint, Azurite over HTTPS with OAuth); median of {repetitions}",
            median(keyless) * 1000, "ms", median(baseline) * 1000, "baseline app posting with httpx", f"≤ {TARGET:g}×",
        ),
    ]  # fmt: skip
    for figure in figures:
        figure.met = figure.ratio <= TARGET and delivered == 3 * repetitions
        if delivered != 3 * repetitions:
            figure.note = f"receiver got {delivered} of {3 * repetitions} posts"
    if tokens != repetitions:  # each keyless worker fetches one token, for the ledger
        figures[1].met = False
        figures[1].note = f"the identity endpoint was asked {tokens} times by {repetitions} workers"
    return figures
