"""Every code sample in README.md and docs/*.md is run or validated, so the docs cannot drift from the code.

- `console` blocks are run, one terminal session per page, and their output compared (docs/samples.md).
- Commands in `bash`/`sh`/`console` blocks: the script exists and its argparse accepts the arguments.
- `yaml` blocks are validated by `scripts/validate_routes.py`, fragments inside a minimal route.
- `python` blocks compile; file paths named in backticks and relative links exist.
New pages under docs/ are picked up without registering them.
"""

from __future__ import annotations

import base64
import inspect
import re
import time
from pathlib import Path

import pytest
import yaml

from handlers.webhook.signing import signature_headers, signing_key
from scripts import validate_routes
from tests.docs.samples import (
    BARE_PYTHON,
    LINK,
    PATH_IN_BACKTICKS,
    ROOT,
    Block,
    all_blocks,
    anchors,
    command_problem,
    commands,
    doc_files,
    relative,
    run_session,
    session_blocks,
)
from tests.support.cicd import example_app_key

SETTING = re.compile(r"\$\{(\w+)\}")
EXAMPLE_SETTINGS = {  # values for the `${NAME}` settings samples name; any other name gets a URL
    "WEBHOOK_SIGNING_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "GITHUB_APP_KEY": example_app_key(),  # docs/cicd.md: a GitHub App's private key (PEM)
}


def _id(block: Block) -> str:
    return block.where


# --- YAML -------------------------------------------------------------------------------------------------


def routes_document(block: Block) -> str | None:
    """The routes file a YAML sample stands for, or None for YAML that is not about routes."""
    data = yaml.safe_load(block.text)
    kind = block.kind or _infer_kind(data)
    events = block.options.get("events", "RunStatusChanged").split(",")
    sample = {"name": "sample", "events": events}
    if kind == "routes":
        return block.text
    if kind == "route":
        return yaml.safe_dump({"routes": data if isinstance(data, list) else [data]}, sort_keys=False)
    if kind == "actions":
        actions = data if isinstance(data, list) else [data]
        return yaml.safe_dump({"routes": [{**sample, "actions": actions}]}, sort_keys=False)
    if kind == "route-options":
        return yaml.safe_dump({"routes": [{**sample, **data, "actions": [{"log": {}}]}]}, sort_keys=False)
    if kind == "yaml":
        return None
    raise AssertionError(
        f"{block.where}: a YAML sample that is neither a routes file, a route nor actions; mark what it is "
        "with <!-- sample: route|actions|route-options events=... --> before the fence, or "
        "<!-- sample: yaml --> if it is not about routes (docs/samples.md)"
    )


def _infer_kind(data: object) -> str | None:
    items = data if isinstance(data, list) else [data]
    if isinstance(data, dict) and "routes" in data:
        return "routes"
    if items and all(isinstance(item, dict) and {"name", "events"} <= item.keys() for item in items):
        return "route"
    if items and all(isinstance(item, dict) and len(item) == 1 for item in items):
        return "actions"
    return None


@pytest.mark.parametrize("block", list(all_blocks("yaml", "yml")), ids=_id)
def test_yaml_sample_is_valid(block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    try:
        document = routes_document(block)
    except yaml.YAMLError as error:
        pytest.fail(f"{block.where}: not YAML: {error}")
    if document is None:
        return
    for name in SETTING.findall(document):
        monkeypatch.setenv(name, EXAMPLE_SETTINGS.get(name, f"https://hooks.example.com/{name.lower()}"))
    routes = tmp_path / "routes.yaml"
    routes.write_text(document)
    status = validate_routes.main(["--routes", str(routes)])
    captured = capsys.readouterr()
    assert status == 0, f"{block.where}: scripts/validate_routes.py refuses the sample:\n{captured.err}\n{document}"


@pytest.mark.parametrize("block", list(all_blocks("jinja", "jinja2")), ids=_id)
def test_email_template_sample_is_valid(block: Block, tmp_path: Path, capsys) -> None:
    assert block.kind == "email-template", f"{block.where}: mark the template: <!-- sample: email-template ... -->"
    template = tmp_path / Path(block.options.get("file", "template.jinja")).name
    template.write_text(block.text)
    events = block.options.get("events", "RunStatusChanged").split(",")
    routes = tmp_path / "routes.yaml"
    email = {"to": ["a@contoso.com"], "template": str(template)}
    route = {"name": "sample", "events": events, "actions": [{"email": email}]}
    routes.write_text(yaml.safe_dump({"routes": [route]}))
    status = validate_routes.main(["--routes", str(routes)])
    assert status == 0, f"{block.where}: scripts/validate_routes.py refuses the template:\n{capsys.readouterr().err}"


# --- commands ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("block", list(all_blocks("bash", "sh", "shell", "console")), ids=_id)
def test_commands_exist_and_take_their_arguments(block: Block) -> None:
    problems = [problem for command in commands(block) if (problem := command_problem(command.text))]
    assert not problems, f"{block.where}:\n" + "\n".join(problems)


def _pages_with_sessions() -> list[Path]:
    return [path for path in doc_files() if session_blocks(path)]


@pytest.mark.parametrize("page", _pages_with_sessions(), ids=relative)
def test_console_session_prints_what_the_page_shows(page: Path, tmp_path: Path, azurite: str) -> None:
    """The page's console blocks, run in order in one shell from the repository root, print what they show."""
    mismatches = [
        f"{run.block.where}: `{run.command.text}` printed something else than the page shows "
        f"(times, silence ids and PIDs are masked):\n--- the page shows\n{run.command.output}--- it printed\n"
        f"{run.printed}"
        for run in run_session(page, tmp_path, azurite)
        if not run.matches
    ]
    assert not mismatches, (
        "\n\n".join(mismatches) + f"\n\nTo write the real output into the page: "
        f".venv/bin/python -m tests.docs.samples {relative(page)}"
    )


# --- everything else --------------------------------------------------------------------------------------


@pytest.mark.parametrize("block", list(all_blocks("python", "py")), ids=_id)
def test_python_sample_compiles(block: Block) -> None:
    compile(block.text, block.where, "exec")


@pytest.mark.parametrize("block", [b for b in all_blocks("python", "py") if b.kind == "webhook-receiver"], ids=_id)
def test_webhook_receiver_sample_accepts_what_the_app_signs_and_nothing_else(block: Block) -> None:
    """The receiver code the docs give checks the signatures the `webhook` action sends."""
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    namespace: dict[str, object] = {"WEBHOOK_SIGNING_SECRET": secret}
    exec(compile(block.text, block.where, "exec"), namespace)  # noqa: S102  # the docs' own sample
    receive = namespace[block.options["function"]]
    body = b'{"route": "failed-runs", "event": {"id": "0b7d4c52"}}'
    headers = signature_headers(signing_key(secret), "0b7d4c52/failed-runs/1", body)

    def call(body: bytes, headers: dict[str, str]) -> object:
        given = {"secret": secret, "body": body, "request_body": body, "headers": headers}
        return receive(*(given[name] for name in inspect.signature(receive).parameters if name in given))

    call(body, headers)
    for forged_body, forged_headers in [
        (body.replace(b"failed-runs", b"other"), headers),
        (body, {**headers, "webhook-id": "another/route/0"}),
        (body, signature_headers(signing_key(secret), headers["webhook-id"], body, int(time.time()) - 3600)),
    ]:
        with pytest.raises(PermissionError):
            call(forged_body, forged_headers)


# Lines of pages other work owns, which still use a bare `python` (remove an entry once its page is fixed).
NOT_YET_CONVERTED: dict[str, str] = {}


@pytest.mark.parametrize("page", doc_files(), ids=relative)
def test_commands_in_text_use_the_project_interpreter(page: Path) -> None:
    lines = page.read_text(encoding="utf-8").splitlines()
    pending = NOT_YET_CONVERTED.get(relative(page), "\0")
    bare = [
        f"{relative(page)}:{number}: {line.strip()}"
        for number, line in enumerate(lines, 1)
        if BARE_PYTHON.search(line.replace(pending, ""))
    ]
    assert not bare, "write `.venv/bin/python scripts/...` (the same form everywhere):\n" + "\n".join(bare)


@pytest.mark.parametrize("page", doc_files(), ids=relative)
def test_named_files_and_links_exist(page: Path) -> None:
    missing = []
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        missing += [f"{relative(page)}:{number}: `{name}`" for name in PATH_IN_BACKTICKS.findall(line)
                    if not (ROOT / name).exists()]  # fmt: skip
        for target, anchor in LINK.findall(line):
            linked = page.parent / target if target else page
            if not linked.exists():
                missing.append(f"{relative(page)}:{number}: link {target}")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                missing.append(f"{relative(page)}:{number}: link {target}#{anchor} (no such heading)")
    assert not missing, "these files are named but do not exist:\n" + "\n".join(missing)


SETTING_NAME = re.compile(r"`([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)[=`]")
# Settings pages name on purpose although nothing reads them (deprecated or no longer needed ones).
NOT_READ_ON_PURPOSE = {"EXISTING_SYSTEM_TOPIC_NAME", "WEBSITE_RUN_FROM_PACKAGE"}
NOT_CODE = {".git", ".venv", ".venv-tools", "node_modules", "tests", "docs", "outbox", ".azure", ".pytest_cache"}


def _code_text() -> str:
    """Everything but the docs and the tests: where a setting that exists is read or set."""
    files = [
        path
        for top in ROOT.iterdir()
        if top.name not in NOT_CODE
        for path in ([top] if top.is_file() else top.rglob("*"))
        if path.is_file() and path.suffix not in {".md", ".pyc"}
    ]
    return "".join(path.read_text(encoding="utf-8", errors="ignore") for path in files)


def test_settings_the_docs_name_are_read_somewhere() -> None:
    code = _code_text()
    unknown = [
        f"{relative(page)}:{number}: {name}"
        for page in doc_files()
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1)
        for name in SETTING_NAME.findall(line)
        if name not in code and name not in NOT_READ_ON_PURPOSE
    ]
    assert not unknown, "settings named in the docs that neither the app, infra nor the hooks read:\n" + "\n".join(
        unknown
    )


def test_the_readme_stays_short() -> None:
    """A newcomer reads it in five minutes; details belong in a page under docs/ (linked from the README)."""
    lines = len((ROOT / "README.md").read_text(encoding="utf-8").splitlines())
    assert lines <= 260, f"README.md has {lines} lines; move details to docs/<topic>.md (about 250 at most)"
