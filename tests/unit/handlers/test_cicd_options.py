"""The options and templates of `github`, `azure_devops` and `eventgrid` are checked when routes load, against
an example event of each type the route takes, and every problem says what to write instead."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from shared.worker import parse_routes
from tests.support.cicd import action_context, route_problems

GH = "repository: a/b\n          "
ADO = "organization: contoso\n          project: mlops\n          "
ADO_ONE = ADO + "pipeline: 1\n          "
TOPIC = "endpoint: https://t.westus-1.eventgrid.azure.net/api/events\n          "


def routes(kind: str, options: str) -> str:
    return f"routes:\n  - name: r\n    events: [ModelRegistered]\n    actions:\n      - {kind}:\n          {options}\n"


@pytest.mark.parametrize(
    ("kind", "options", "expected"),
    [
        ("github", "repository: churn-model\n          dispatch: {event_type: x}\n          token: t",
         "repository must be owner/name"),
        ("github", GH + "token: t", "give exactly one of dispatch"),
        ("github", GH + "dispatch: {event_type: x}", "give exactly one of token"),
        ("github", GH + "dispatch: {event_type: x, client_payload: {" + ", ".join(f"k{i}: v" for i in range(10))
         + "}}\n          token: t",
         "client_payload has 10 properties; GitHub takes at most 10 and the action adds ledger_key"),
        ("github", GH + 'dispatch: {event_type: x, client_payload: {m: "{{ event.fields.nope }}"}}\n          token: t',
         "github: dispatch.client_payload.m: template refers to something the event does not have"),
        ("github", GH + "workflow: {file: deploy.yml, ref: main, inputs: {m: {nested: 1}}}\n          token: t",
         "github: workflow.inputs.m: must be text, a number or true/false"),
        ("github", GH + "workflow: {file: deploy, ref: main}\n          token: t",
         "workflow.file is the workflow's file name"),
        ("github", GH + "dispatch: {event_type: x}\n          app: {id: 1, installation_id: 2, private_key: not-a-key}",
         "app.private_key is not a PEM private key"),
        ("azure_devops", ADO + "pipeline: deploy", "pipeline is the pipeline's number (definitionId in its URL)"),
        ("azure_devops", ADO.replace("contoso", "contoso/x") + "pipeline: 1", "organization is a name without '/'"),
        ("azure_devops", ADO, "option 'pipeline' is required"),
        ("azure_devops", ADO_ONE + 'parameters: {m: "{{ event.fields.run_id }}"}',
         "azure_devops: parameters.m: template refers to something the event does not have"),
        ("azure_devops", ADO_ONE + "parameters: {m: [1]}",
         "azure_devops: parameters.m: must be text, a number or true/false"),
        ("azure_devops", ADO_ONE + "parameters: {ledger_key: x}", "parameters.ledger_key is set by the action"),
        ("eventgrid", "endpoint: not-a-url", "eventgrid: endpoint must be an absolute http(s) URL"),
        ("eventgrid", TOPIC + "schema: cncf", "schema must be one of cloudevents, eventgrid"),
        ("eventgrid", "endpoint: https://ns.westus-1.eventgrid.azure.net\n          namespace_topic: t\n"
         "          schema: eventgrid", "namespace topics take CloudEvents only"),
        ("eventgrid", TOPIC + "body: '{\"m\": {{ event.fields.model_name }}}'",
         "eventgrid: body: does not render to valid JSON"),
    ],
)  # fmt: skip
def test_options_and_templates_are_checked_when_routes_load(kind: str, options: str, expected: str) -> None:
    problems = "\n".join(route_problems(routes(kind, options)))
    assert expected in problems, problems
    assert "not-a-key" not in problems.replace("private_key: not-a-key", "")  # a key is never quoted


def test_an_app_private_key_pasted_on_one_line_loads() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption()).decode()  # fmt: skip
    options = GH + 'dispatch: {event_type: x}\n          app: {id: 1, installation_id: 2, private_key: "${KEY}"}'
    assert route_problems(routes("github", options), KEY=pem.replace("\n", "\\n")) == []
    assert route_problems(routes("github", options), KEY=pem) == []


@pytest.mark.parametrize(
    ("kind", "options", "sent"),
    [
        ("github", GH + "workflow: {file: d.yml, ref: main, key_input: false}\n          token: t", {}),
        ("github", GH + "workflow: {file: d.yml, ref: main, key_input: deploy_key}\n          token: t",
         {"deploy_key": "e/r/0"}),
        ("github", GH + "workflow: {file: d.yml, ref: main}\n          token: t", {"ledger_key": "e/r/0"}),
        ("azure_devops", ADO_ONE + "key_parameter: false", {}),
        ("azure_devops", ADO_ONE + "key_parameter: run_key", {"run_key": "e/r/0"}),
    ],
)  # fmt: skip
def test_the_ledger_key_input_can_be_renamed_or_left_out(kind: str, options: str, sent: dict[str, str]) -> None:
    action = parse_routes(routes(kind, options), "routes.yaml", {}).routes[0].actions[0].action
    body = action._body(action_context("e/r/0"))
    assert (body["inputs"] if kind == "github" else body.get("templateParameters", {})) == sent
