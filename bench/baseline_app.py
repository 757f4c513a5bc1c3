"""The baseline the app is measured against: a function app with one trivial Event Grid function
on the same azure-functions, which forwards the event's JSON with httpx (imported on first use,
like any sensible app). What the app does beyond this (routes, ledger, retries) is its overhead.
"""

import os

import azure.functions as func

app = func.FunctionApp()


@app.function_name("forward")
@app.event_grid_trigger(arg_name="event")
def forward(event: func.EventGridEvent) -> None:
    import httpx

    httpx.post(os.environ["BASELINE_URL"], json=event.get_json(), timeout=10).raise_for_status()
