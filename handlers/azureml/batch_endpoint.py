"""`batch_endpoint`: invoke an Azure ML batch endpoint, starting one batch job per event.

    - batch_endpoint:
        endpoint: score-be
        deployment: blue                       # optional; default: the endpoint's default deployment
        experiment: nightly-scoring            # optional
        inputs:                                # templates over the event
          input_data: {type: uri_folder, path: "azureml://datastores/scoring/paths/{{ event.data.ServiceName }}/"}
          threshold: "0.5"
        cooldown: 1h, max_per_day: 10          # guardrails

The batch job is named after the ledger key (`job_name`), so a redelivered event asks for the same
job and the service's "already exists" counts as done.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from typing import Any, ClassVar

from handlers.azureml.action import AzureMLAction, outcome, parse_experiment
from handlers.azureml.client import JobExists, azure_call
from handlers.azureml.job_inputs import DataInput, JobInputs
from shared.actions import ActionContext, ActionOutcome
from shared.events.workspace import Workspace
from shared.problems import Problems

ENDPOINT_NAME = re.compile(r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$")  # azure.ai.ml EndpointConfigurations
_LITERAL_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string"}

# azure-ai-ml (1.35) builds the invoke headers in ONE dict shared by every call and never removes
# `azureml-model-deployment`: after one invoke naming a deployment, later invokes that name none
# would still be routed to it, and concurrent invokes would share headers. Invoke one at a time and
# clear what a previous call left.
_invoke_lock = threading.Lock()


class BatchEndpointAction(AzureMLAction):
    kind = "batch_endpoint"
    OPTIONS: ClassVar[Mapping[str, bool]] = {
        **AzureMLAction.OPTIONS,
        "endpoint": True,
        "deployment": False,
        "experiment": False,
        "inputs": False,
    }
    SKIP_IF_RUNNING_UNSUPPORTED = "batch jobs cannot carry the route tag; use cooldown or max_per_day"

    def configure_job(self, problems: Problems, line: int) -> None:
        self.endpoint = str(self.options.get("endpoint") or "")
        if self.endpoint and not ENDPOINT_NAME.match(self.endpoint):
            problems.add(line, f"batch_endpoint: endpoint {self.endpoint!r} is not a valid endpoint name")
        deployment = self.options.get("deployment")
        self.deployment = str(deployment) if deployment else None
        self.experiment = parse_experiment(self.options.get("experiment"), problems, line, self.kind)
        self.inputs = JobInputs.parse(
            self.options.get("inputs"), problems, line, "batch_endpoint: inputs", self.event_types
        )

    @property
    def target(self) -> str:
        return f"{self.endpoint}/{self.deployment}" if self.deployment else self.endpoint

    @property
    def default_key(self) -> str:
        return self.endpoint

    def job_preview(self, ctx: ActionContext) -> dict[str, Any]:
        inputs = {name: {"type": value.type, "path": value.path} if isinstance(value, DataInput) else value
                  for name, value in self.inputs.render(ctx).items()}  # fmt: skip
        return {"endpoint": self.endpoint, "deployment": self.deployment, "experiment": self.experiment,
                "inputs": inputs}  # fmt: skip

    def start(self, ctx: ActionContext, client: Any, workspace: Workspace, job_name: str) -> ActionOutcome:
        from azure.ai.ml import Input
        from azure.ai.ml.constants._endpoint import EndpointInvokeFields

        inputs = {
            name: Input(type=value.type, path=value.path)
            if isinstance(value, DataInput)
            else Input(type=_LITERAL_TYPES[type(value)], default=value)
            for name, value in self.inputs.render(ctx).items()
        }
        try:
            with _invoke_lock, azure_call(f"invoking batch endpoint {self.endpoint}", workspace):
                EndpointInvokeFields.DEFAULT_HEADER.pop(EndpointInvokeFields.MODEL_DEPLOYMENT, None)
                job = client.batch_endpoints.invoke(
                    self.endpoint, deployment_name=self.deployment, inputs=inputs or None, job_name=job_name,
                    experiment_name=self.experiment,
                )  # fmt: skip
        except JobExists:
            return outcome(f"batch job {job_name} was already started by an earlier delivery", workspace, job_name)
        return outcome(f"started batch job {job.name or job_name} on {self.target}", workspace, job.name or job_name)
