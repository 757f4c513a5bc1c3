"""The Azure Functions app: which function takes which Azure ML events. Nothing more lives here.

The event types of each function are listed in shared/functions.json, which the Event Grid
subscriptions in infra/ are generated from. The work happens in shared/engine.py.
"""

import azure.functions as func

from shared.engine import dispatch

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
