"""The fields reference (docs/fields.md) is generated from the typed event classes and stays current;
paths no event of a route's types has are found."""

from __future__ import annotations

from datetime import UTC, datetime

from handlers.azureml.workspace_reads import _run_view
from scripts import fields_doc
from shared.events.fields import ENRICHED, MEANING, event_classes, path_problem

RUN_STATUS_CHANGED = ("Microsoft.MachineLearningServices.RunStatusChanged",)


def test_the_generated_reference_is_current() -> None:
    assert fields_doc.main(["--check"]) == 0, "run: .venv/bin/python scripts/fields_doc.py"


def test_every_field_of_every_type_is_explained() -> None:
    for name, cls in event_classes().items():
        for _, key, _, _ in cls.FIELDS:
            assert MEANING.get(key), f"{name}: data.{key} has no meaning in shared/fields.py MEANING"


def test_the_enriched_run_fields_are_what_the_workspace_read_returns() -> None:
    at = datetime(2025, 3, 4, tzinfo=UTC)
    view = _run_view("r1", {"status": "Failed"}, {}, at, at, {})
    assert [name for name, _, _ in ENRICHED["run"]] == list(view)


def test_a_misspelt_data_field_is_found_with_a_suggestion() -> None:
    problem = path_problem("data.ExperimentNme", RUN_STATUS_CHANGED)
    assert problem is not None
    assert problem.startswith("data.ExperimentNme: RunStatusChanged events have no such field (did you mean")
    assert "data.experimentName?" in problem


def test_free_form_maps_take_any_key_and_letter_case_does_not_matter() -> None:
    for path in ("data.RUNSTATUS", "data.runTags.azureml.pipelineid", "data.RunProperties.x", "subject", "run.x"):
        assert path_problem(path, RUN_STATUS_CHANGED) is None, path


def test_a_single_value_has_nothing_below_it() -> None:
    assert path_problem("data.RunStatus.code", RUN_STATUS_CHANGED) == (
        "data.RunStatus.code: data.runStatus is a single value, it has no `.code`"
    )


def test_synthetic_events_carrying_another_events_data_are_not_checked() -> None:
    assert path_problem("data.RunId", ("ExpectationMissed",)) is None


def test_a_path_is_fine_when_one_of_the_routes_types_has_it() -> None:
    types = ("Microsoft.MachineLearningServices.ModelRegistered", "Microsoft.MachineLearningServices.ModelDeployed")
    assert path_problem("data.ModelName", types) is None
    assert path_problem("data.SignalName", ("Microsoft.MachineLearningServices.DatasetDriftDetected",)) is None


def test_validation_warns_about_when_and_group_paths_the_event_types_lack() -> None:
    from shared.worker import parse_routes

    table = parse_routes(
        """
routes:
  - name: prod
    events: [RunStatusChanged]
    when:
      data.ExperimentNme: {startswith: prod-}
      data.RunTags.azureml.pipelineid: {exists: true}
    group: {by: [data.runstatus, data.Foo]}
    actions: [log: {}]
""",
        "routes.yaml",
        {},
    )
    assert table.route("prod") is not None  # a warning, not an error: the file still loads
    assert [warning.split(": ", 2)[2].split(" (")[0] for warning in table.warnings] == [
        "group.by: data.Foo: RunStatusChanged events have no such field",
        "when: data.ExperimentNme: RunStatusChanged events have no such field",
    ]
    assert "did you mean data.experimentName?" in table.warnings[1]
