"""The Azure Functions app: which function takes which Azure ML events. Nothing more lives here.

`flush_digests` is a timer: it delivers the digests of routes with `group:` (shared/pipeline/engine.py);
`check_expectations` another: it acts on the expectations of routes with `expect:` that nothing met.
The event types of each function are listed in shared/functions.json, which the Event Grid
subscriptions in infra/ are generated from. The work happens in shared/worker.py (docs/architecture.md),
which shared/entry.py loads on the first event so that indexing the app stays cheap.
"""

import azure.functions as func

from shared.entry import check_expectations, dispatch, flush_digests

# NCRONTAB (seconds first): every minute, at second 0 (digests) and 30 (expectations).
DIGEST_FLUSH_SCHEDULE = "0 * * * * *"
EXPECTATION_CHECK_SCHEDULE = "30 * * * * *"

app = func.FunctionApp()


@app.function_name("run_events")
@app.event_grid_trigger(arg_name="event")
def run_events(event: func.EventGridEvent) -> None:
    """RunCompleted, RunStatusChanged."""
    dispatch("run_events", event)


@app.function_name("model_registered")
@app.event_grid_trigger(arg_name="event")
def model_registered(event: func.EventGridEvent) -> None:
    """ModelRegistered."""
    dispatch("model_registered", event)


@app.function_name("model_deployed")
@app.event_grid_trigger(arg_name="event")
def model_deployed(event: func.EventGridEvent) -> None:
    """ModelDeployed."""
    dispatch("model_deployed", event)


@app.function_name("drift_detected")
@app.event_grid_trigger(arg_name="event")
def drift_detected(event: func.EventGridEvent) -> None:
    """DatasetDriftDetected."""
    dispatch("drift_detected", event)


@app.function_name("data_events")
@app.event_grid_trigger(arg_name="event")
def data_events(event: func.EventGridEvent) -> None:
    """BlobCreated, BlobDeleted: the storage accounts behind the datastores (docs/event-sources.md)."""
    dispatch("data_events", event)


@app.function_name("policy_events")
@app.event_grid_trigger(arg_name="event")
def policy_events(event: func.EventGridEvent) -> None:
    """PolicyStateCreated, PolicyStateChanged, PolicyStateDeleted: Azure Policy compliance."""
    dispatch("policy_events", event)


@app.function_name("resource_events")
@app.event_grid_trigger(arg_name="event")
def resource_events(event: func.EventGridEvent) -> None:
    """Resource{Write,Delete,Action}{Success,Failure,Cancel}: Resource Manager operations (failed deployments)."""
    dispatch("resource_events", event)


@app.function_name("flush_digests")
@app.timer_trigger(arg_name="timer", schedule=DIGEST_FLUSH_SCHEDULE, run_on_startup=False)
def flush_due_digests(timer: func.TimerRequest) -> None:
    """Digests of grouped events: a group waits at most its `wait` plus this period."""
    flush_digests()


@app.function_name("check_expectations")
@app.timer_trigger(arg_name="timer", schedule=EXPECTATION_CHECK_SCHEDULE, run_on_startup=False)
def check_due_expectations(timer: func.TimerRequest) -> None:
    """Missed expectations: acted on within a minute of their deadline."""
    check_expectations()
