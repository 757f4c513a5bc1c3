"""`schedule`: fire an existing Azure ML job schedule now (`ml_client.schedules.trigger`).

    - schedule:
        name: nightly-eval
        skip_if_running: true      # not while a job of this schedule is still active
        cooldown: 12h              # guardrails

The schedule's job definition is used as is: the trigger call cannot override its inputs
(Azure/azure-cli#28723). Exactly once is weaker than for `pipeline`: the trigger takes no
idempotency key and the service names the job, so the ledger claim is what prevents a second
trigger. Only if a worker dies between the trigger and writing its outcome (and its lease
expires) can a redelivery trigger again; `skip_if_running` catches that case while the first job
runs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

from handlers.azureml.action import AzureMLAction, first_active, outcome
from handlers.azureml.client import JobExists, azure_call
from shared.actions import ActionContext, ActionFailed, ActionOutcome
from shared.events.workspace import Workspace
from shared.problems import Problems

SCHEDULE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$")


class ScheduleAction(AzureMLAction):
    kind = "schedule"
    OPTIONS: ClassVar[Mapping[str, bool]] = {**AzureMLAction.OPTIONS, "name": True}

    def configure_job(self, problems: Problems, line: int) -> None:
        self.name = str(self.options.get("name") or "")
        if self.name and not SCHEDULE_NAME.match(self.name):
            problems.add(line, f"schedule: name {self.name!r}: letters, digits, '_' and '-'")

    @property
    def target(self) -> str:
        return self.name

    @property
    def default_key(self) -> str:
        return self.name

    def running_job(self, ctx: ActionContext, client: Any, job_name: str) -> tuple[str, str] | None:
        return first_active(client.jobs.list(scheduled_job_name=self.name), job_name)

    def job_preview(self, ctx: ActionContext) -> dict[str, Any]:
        return {"schedule": self.name, "note": "the schedule's own job runs, with the schedule's name and inputs"}

    def start(self, ctx: ActionContext, client: Any, workspace: Workspace, job_name: str) -> ActionOutcome:
        try:
            with azure_call(f"triggering schedule {self.name}", workspace):
                result = client.schedules.trigger(self.name)
        except JobExists as conflict:
            raise ActionFailed(f"triggering schedule {self.name}: {conflict}") from None
        started = result.job_name or ""
        if not started:
            return ActionOutcome(f"triggered schedule {self.name}", {"schedule": self.name})
        triggered = outcome(f"triggered schedule {self.name}: job {started}", workspace, started)
        triggered.record["schedule"] = self.name
        return triggered
