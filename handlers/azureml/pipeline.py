"""`pipeline`: submit an Azure ML pipeline job from a YAML file shipped with the app.

    - pipeline:
        job: pipelines/retrain-on-drift.yml     # relative to the app's folder
        experiment: retrain                     # optional; default: the YAML's experiment_name
        inputs: {drift_run_id: "{{ event.data.RunId }}"}   # templates over the event
        tags: {team: growth}                    # optional; the route, event id and ledger key are added
        cooldown: 6h, key: ..., max_per_day: 3, skip_if_running: true   # guardrails

Loading routes checks the YAML cheaply (PyYAML: syntax, `type: pipeline`, that each input exists);
`scripts/validate_routes.py` also runs the SDK's own `load_job` on it (`deep_check`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import yaml

from handlers.azureml.action import ROUTE_TAG, AzureMLAction, first_active, job_tags, outcome, parse_experiment
from handlers.azureml.client import JobExists, azure_call
from handlers.azureml.job_inputs import DataInput, JobInputs
from shared.actions import ActionContext, ActionFailed, ActionOutcome
from shared.events.workspace import Workspace
from shared.problems import Problems
from shared.settings import APP_ROOT
from shared.templates import TemplateProblem, compile_checked, render, template_context


class PipelineAction(AzureMLAction):
    kind = "pipeline"
    OPTIONS: ClassVar[Mapping[str, bool]] = {
        **AzureMLAction.OPTIONS,
        "job": True,
        "experiment": False,
        "inputs": False,
        "tags": False,
    }

    def configure_job(self, problems: Problems, line: int) -> None:
        self.job = str(self.options.get("job") or "")
        self.path = Path(self.job) if Path(self.job).is_absolute() else APP_ROOT / self.job
        self.experiment = parse_experiment(self.options.get("experiment"), problems, line, self.kind)
        self.inputs = JobInputs.parse(self.options.get("inputs"), problems, line, "pipeline: inputs", self.event_types)
        self.tags = {}
        tags = self.options.get("tags") or {}
        if not isinstance(tags, Mapping):
            problems.add(line, "pipeline: tags must be a mapping of name: value (values may be templates)")
            tags = {}
        for name, value in tags.items():
            try:
                self.tags[str(name)] = compile_checked(str(value), self.event_types)
            except TemplateProblem as problem:
                problems.add(line, f"pipeline: tags.{name}: {problem}")
        self.yaml_experiment = ""
        if self.job:
            self._check_job_file(problems, line)

    def _check_job_file(self, problems: Problems, line: int) -> None:
        """Cheap checks of the job YAML (no azure.ai.ml): it parses, is a pipeline, declares our inputs."""
        try:
            document = yaml.safe_load(self.path.read_text(encoding="utf-8"))
        except OSError as error:
            problems.add(line, f"pipeline: job {self.job}: cannot read: {error.strerror} ({self.path})")
            return
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f"{self.job}:{mark.line + 1}" if mark else self.job
            problems.add(line, f"pipeline: job {where}: YAML syntax error: {getattr(error, 'problem', error)}")
            return
        if not isinstance(document, Mapping) or document.get("type") != "pipeline":
            problems.add(line, f"pipeline: job {self.job} is not a pipeline job YAML (it needs `type: pipeline`)")
            return
        self.yaml_experiment = str(document.get("experiment_name") or "")
        declared = document.get("inputs") or {}
        for name in self.inputs.names:
            if name not in declared:
                known = ", ".join(map(str, declared)) or "none"
                problems.add(line, f"pipeline: inputs.{name}: {self.job} declares no input {name!r} (it has: {known})")

    def deep_check(self, problems: Problems, line: int) -> None:
        from azure.ai.ml import load_job

        if not self.path.is_file():
            return  # already reported by configure
        try:
            load_job(self.path)
        except Exception as error:  # the SDK raises many types for a bad YAML; each is a finding here
            problems.add(line, f"pipeline: job {self.job} does not load with azure.ai.ml: {_load_errors(error)}")

    @property
    def target(self) -> str:
        return self.job

    @property
    def default_key(self) -> str:
        return str(self.experiment or self.yaml_experiment or self.path.stem)

    def running_job(self, ctx: ActionContext, client: Any, job_name: str) -> tuple[str, str] | None:
        return first_active(client.jobs.list(tag=ROUTE_TAG), job_name, route=ctx.route)

    def job_preview(self, ctx: ActionContext) -> dict[str, Any]:
        return {
            "job": self.job, "experiment": self.experiment or self.yaml_experiment or None,
            "inputs": {name: _override(value) for name, value in self.inputs.render(ctx).items()},
            "tags": job_tags(ctx, self._tags(ctx)),
        }  # fmt: skip

    def _tags(self, ctx: ActionContext) -> dict[str, str]:
        context = template_context(ctx.event, ctx.route)
        try:
            return {name: render(template, context) for name, template in self.tags.items()}
        except TemplateProblem as problem:
            raise ActionFailed(f"tags: {problem}") from None

    def start(self, ctx: ActionContext, client: Any, workspace: Workspace, job_name: str) -> ActionOutcome:
        from azure.ai.ml import load_job

        overrides = [{f"inputs.{name}": _override(value)} for name, value in self.inputs.render(ctx).items()]
        extra_tags = self._tags(ctx)
        with azure_call(f"loading {self.job}", workspace):
            job = load_job(self.path, params_override=overrides)
        job.name = job_name
        tags = job_tags(ctx, {**(job.tags or {}), **extra_tags})
        try:
            with azure_call(f"submitting {self.job}", workspace):
                created = client.jobs.create_or_update(job, experiment_name=self.experiment, tags=tags)
        except JobExists:
            return outcome(f"pipeline job {job_name} was already started by an earlier delivery", workspace, job_name)
        return outcome(f"started pipeline job {job_name} from {self.job}", workspace, job_name, created.studio_url)


def _override(value: Any) -> Any:
    return {"type": value.type, "path": value.path} if isinstance(value, DataInput) else value


def _load_errors(error: Exception) -> str:
    """The SDK's schema errors ("path: message (line N)"), out of the JSON blob its message embeds."""
    text = str(error)
    try:
        report, _ = json.JSONDecoder().raw_decode(text[text.index("{") :])
        return "; ".join(
            f"{item['path']}: {item['message']} (line {str(item.get('location', '')).rpartition('#line ')[2] or '?'})"
            for item in report["errors"]
        )
    except (ValueError, KeyError, TypeError):
        return " ".join(text.split())[:500]
