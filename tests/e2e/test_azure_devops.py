"""The `azure_devops` action against a local HTTPS Azure DevOps (tests/support/azure_devops_fake.py) that
checks the bearer token's audience and the organisation's members, or the PAT, and the run request; the
managed identity's tokens come from a local identity endpoint, as on App Service."""

from __future__ import annotations

import functools
from collections.abc import Iterator

import pytest

from shared.platform import identity
from tests.support.azure_devops_fake import AzureDevOpsFake, Pipeline
from tests.support.cicd import trust
from tests.support.delivery import only_record
from tests.support.events import load_event
from tests.support.identity_endpoint import IdentityEndpoint

MODEL = load_event("eventgrid/model_registered.json")
KEY = f"{MODEL['id']}/deploy/0"
CLIENT_ID = "5e29463d-71da-4fe0-8e69-999b57db23b0"  # the app's user-assigned identity
PAT = "adopat0123456789"

ROUTE = """
routes:
  - name: deploy
    events: [ModelRegistered]
    actions:
      - azure_devops:
          organization: contoso
          project: mlops
          pipeline: {pipeline}
          branch: main
          parameters: {{model: "{{{{ event.fields.model_name }}}}", version: "{{{{ event.fields.model_version }}}}"}}
          api_url: "${{ADO_API}}"
          allow_private: true
          retry: {{attempts: 3, backoff: 0s}}
{extra}"""


def route(pipeline: int = 42, extra: str = "") -> str:
    return ROUTE.format(pipeline=pipeline, extra=extra)


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[AzureDevOpsFake, IdentityEndpoint]]:
    fake, endpoint = AzureDevOpsFake(), IdentityEndpoint()
    yield fake, endpoint
    fake.close()
    endpoint.close()


@pytest.fixture
def ado(servers, app_env, monkeypatch: pytest.MonkeyPatch):
    """The fake with pipeline 42 (parameters model, version, ledger_key), the app's identity in the
    organisation, and `configure(routes, **settings)` that points the app at both servers."""
    fake, endpoint = servers
    fake.reset()
    endpoint.forget()
    fake.add_pipeline("contoso", "mlops", 42, Pipeline({"model": True, "version": False, "ledger_key": False}))
    fake.add_member("contoso", CLIENT_ID)
    fake.add_pat("contoso", PAT)
    trust(monkeypatch, fake.ca_bundle)
    monkeypatch.setattr(identity, "app_credential", functools.cache(identity.app_credential.__wrapped__))

    def configure(text: str, **settings: str) -> AzureDevOpsFake:
        app_env(text, ADO_API=fake.url, AZURE_CLIENT_ID=CLIENT_ID, ADO_PAT=PAT, **endpoint.settings(), **settings)
        return fake

    return configure


def test_the_managed_identity_queues_a_run_with_templated_parameters_and_the_ledger_key(ado, deliver) -> None:
    fake = ado(route())
    assert deliver("model_registered", MODEL).statuses() == ["done"]
    (run,) = fake.runs
    assert run.authorization == f"bearer:{CLIENT_ID}"
    assert run.body == {
        "resources": {"repositories": {"self": {"refName": "refs/heads/main"}}},
        "templateParameters": {"model": "churn-classifier", "version": "7", "ledger_key": KEY},
    }
    done = only_record(MODEL["id"])
    assert done.status == "done" and done.extra["run_id"] == 1 and "buildId=1" in done.extra["run_url"]
    assert "run pipeline 42 in contoso/mlops -> run 1 queued" in done.detail


def test_a_pat_authenticates_with_basic_auth_and_sets_variables(ado, deliver) -> None:
    extra = '          token: "${ADO_PAT}"\n          variables: {stage: "{{ event.data.ModelTags.stage }}"}\n'
    fake = ado(route(extra=extra))
    fake.pipelines[("contoso", "mlops", 42)].settable_variables.add("stage")
    assert deliver("model_registered", MODEL).statuses() == ["done"]
    (run,) = fake.runs
    assert run.authorization == "pat" and run.body["variables"] == {"stage": {"value": "candidate", "isSecret": False}}
    assert PAT not in repr(only_record(MODEL["id"]))


def test_a_redelivery_queues_nothing(ado, deliver) -> None:
    fake = ado(route())
    assert deliver("model_registered", MODEL).statuses() == ["done"]
    assert deliver("model_registered", MODEL).statuses() == ["skipped"]
    assert len(fake.runs) == 1


@pytest.mark.parametrize("status", [429, 503])
def test_throttling_with_retry_after_then_success(ado, deliver, status) -> None:
    fake = ado(route())
    fake.throttle(status, retry_after=1)
    (report,) = deliver("model_registered", MODEL).reports
    assert (report.status, report.attempts) == ("done", 2)
    assert len(fake.runs) == 1


@pytest.mark.parametrize(
    ("pipeline", "extra", "change", "expected"),
    [
        (43, "", None, "-> 404: Pipeline with id 43 not found. (no pipeline 43 in project mlops of organization "
         "contoso; the id is the definitionId in the pipeline's URL)"),
        (42, "", lambda fake: fake.members.clear(),
         "the app's managed identity was refused: add the app's managed identity to organization contoso"),
        (42, '          token: "wrong-pat"\n', None, "Azure DevOps did not accept the PAT"),
        (42, "", lambda fake: fake.pipelines[("contoso", "mlops", 42)].parameters.pop("ledger_key"),
         "-> 400: Unexpected parameter 'ledger_key' (the pipeline's YAML must declare the parameters model, "
         "version, ledger_key)"),
    ],
)  # fmt: skip
def test_permanent_failures_say_what_to_fix(ado, deliver, pipeline, extra, change, expected) -> None:
    fake = ado(route(pipeline, extra))
    if change:
        change(fake)
    delivery = deliver("model_registered", MODEL)
    assert delivery.statuses() == ["failed"] and delivery.reports[0].attempts == 1
    failed = only_record(MODEL["id"])
    assert failed.status == "failed" and expected in failed.detail, failed.detail
    assert fake.runs == []
