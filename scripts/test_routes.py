"""Test a routes file against cases: which routes take each event, which actions they run, and what
the messages say. Nothing is sent and no storage is needed.

    python scripts/test_routes.py [--routes FILE] CASES...

A case file (YAML) lists `cases`; each names an event and what should happen to it:

    cases:
      - name: a failed production run reaches the team
        event: {type: RunStatusChanged, set: {data.RunStatus: Failed, data.ExperimentName: prod-churn}}
        routes: [failed-runs]              # exactly these routes take it; [] for none
        actions:                           # optional: each route's action kinds, in order
          failed-runs: [log, email]
        renders:                           # optional: text the previewed action must contain
          failed-runs/email: ["prod-churn", "Open in Azure ML studio"]
      - name: the shipped sample
        event: tests/events/eventgrid/run_status_changed_failed.json   # relative to the case file
        routes: [failed-runs]

`event` is a file (one event), a whole event inline (Event Grid or CloudEvents), or `{type: T, set:
{PATH: VALUE}}`, a sample event of type T with those fields set (as scripts/make_event.py makes it).
A top-level `settings:` mapping supplies `${SETTING}` values for loading the routes (over the
environment's). Exit status: 0 when every case passes, 1 when one does not (the difference is
printed), 2 when a case file or the routes cannot be read.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from scripts.cli import parser_from_doc

CASE_KEYS = ("name", "event", "routes", "actions", "renders")


class CaseFileProblem(ValueError):
    """A case file that cannot be used as written; the message names the file and the case."""


@dataclass
class Case:
    name: str
    event: dict[str, Any]
    routes: list[str]
    actions: dict[str, list[str]] = field(default_factory=dict)
    renders: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class CaseFile:
    path: Path
    cases: list[Case]
    settings: dict[str, str] = field(default_factory=dict)


def load_cases(path: Path) -> CaseFile:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise CaseFileProblem(f"{path}: cannot read: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise CaseFileProblem(f"{path}: not YAML: {error}") from None
    if not isinstance(document, Mapping) or not isinstance(document.get("cases"), list):
        raise CaseFileProblem(f"{path}: the file must be a mapping with a `cases:` list")
    settings = document.get("settings") or {}
    if not isinstance(settings, Mapping):
        raise CaseFileProblem(f"{path}: `settings` must be a mapping of NAME: value")
    cases = [_case(path, index, spec) for index, spec in enumerate(document["cases"])]
    return CaseFile(path, cases, {str(name): str(value) for name, value in settings.items()})


def _case(path: Path, index: int, spec: Any) -> Case:
    where = f"{path}: cases[{index}]"
    if not isinstance(spec, Mapping):
        raise CaseFileProblem(f"{where}: each case is a mapping with name, event and routes")
    name = str(spec.get("name") or f"cases[{index}]")
    where = f"{path}: case {name!r}"
    unknown = [str(key) for key in spec if key not in CASE_KEYS]
    if unknown:
        raise CaseFileProblem(f"{where}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(CASE_KEYS)})")
    if "event" not in spec or "routes" not in spec:
        raise CaseFileProblem(f"{where}: `event` and `routes` are required")
    routes = spec["routes"]
    if not isinstance(routes, list) or not all(isinstance(route, str) for route in routes):
        raise CaseFileProblem(f"{where}: `routes` must be a list of route names ([] for none)")
    actions, renders = spec.get("actions") or {}, spec.get("renders") or {}
    if not _list_map(actions):
        raise CaseFileProblem(f"{where}: `actions` must map a route name to a list of kinds, e.g. {{r: [log]}}")
    if not _list_map(renders):
        raise CaseFileProblem(f"{where}: `renders` must map route/kind to a list of texts")
    return Case(name, _event(path, where, spec["event"]), list(routes),
                {str(k): [str(x) for x in v] for k, v in actions.items()},
                {str(k): [str(x) for x in v] for k, v in renders.items()})  # fmt: skip


def _list_map(value: Any) -> bool:
    return isinstance(value, Mapping) and all(isinstance(item, list) for item in value.values())


def _event(path: Path, where: str, spec: Any) -> dict[str, Any]:
    from scripts.make_event import SampleProblem, build_event

    if isinstance(spec, str):
        file = path.parent / spec
        try:
            decoded = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise CaseFileProblem(f"{where}: event file {spec}: {getattr(error, 'strerror', None) or error}") from None
        if isinstance(decoded, list):
            if len(decoded) != 1:
                raise CaseFileProblem(f"{where}: event file {spec} holds {len(decoded)} events; a case takes one")
            decoded = decoded[0]
        return decoded
    if isinstance(spec, Mapping) and "type" in spec and "specversion" not in spec:
        values = spec.get("set") or {}
        if set(spec) - {"type", "set"} or not isinstance(values, Mapping):
            raise CaseFileProblem(f"{where}: a sample event is {{type: RunStatusChanged, set: {{PATH: VALUE}}}}")
        try:
            return build_event(str(spec["type"]), values)
        except SampleProblem as problem:
            raise CaseFileProblem(f"{where}: {problem}") from None
    if isinstance(spec, Mapping):
        return dict(spec)
    raise CaseFileProblem(f"{where}: `event` is a file, an inline event or {{type: ..., set: {{...}}}}")


# ---- running ----------------------------------------------------------------------------------------


def run_case(case: Case, table: Any, settings: Any) -> list[str]:
    """The differences between what the case expects and what the routes do; [] when it passes."""
    from shared.actions import ActionContext
    from shared.events.model import EventRejected
    from shared.events.parse import parse_event
    from shared.ledger.records import LedgerRecord
    from shared.routing.explain import explain

    try:
        event = parse_event(case.event)
    except EventRejected as rejected:
        return [f"the event is rejected: {rejected}"]
    explanations = {explanation.route: explanation for explanation in explain(table, event)}
    matched = [route.name for route in table.matching(event)]
    problems = []
    for name in [*case.routes, *case.actions, *(key.split("/", 1)[0] for key in case.renders)]:
        if table.route(name) is None:
            problems.append(f"no route named {name!r} in {table.source}")
    if problems:
        return problems
    if sorted(matched) != sorted(case.routes):
        problems.append(f"routes: expected {case.routes}, got {matched}")
        for name in sorted(set(matched) ^ set(case.routes)):
            problems.extend(f"  {line}" for line in explanations[name].lines()[:1])
    for name, kinds in case.actions.items():
        route = table.route(name)
        actual = [action.kind for action in route.actions]
        if actual != kinds:
            problems.append(f"actions of {name}: expected {kinds}, got {actual}")
    for key, fragments in case.renders.items():
        name, _, selector = key.partition("/")
        route = table.route(name)
        if name not in matched:
            problems.append(f"renders {key}: route {name} does not take this event")
            continue
        chosen = [action for action in route.actions if selector in (action.kind, f"{action.kind}#{action.position}")]
        if not chosen:
            problems.append(f"renders {key}: route {name} has no {selector} action")
            continue
        for action in chosen:
            record = LedgerRecord(event.id, name, action.position, action.kind, action.target, "")
            ctx = ActionContext(event, name, action.position, record.key, time.monotonic() + 30, settings)
            try:
                text = action.action.preview(ctx).text()
            except Exception as error:  # a template that fails for this event is a finding
                problems.append(f"renders {key}: cannot render: {type(error).__name__}: {error}")
                continue
            missing = [fragment for fragment in fragments if fragment not in text]
            if missing:
                problems.append(f"renders {key}#{action.position}: does not contain {missing}")
    return problems


def run_file(case_file: CaseFile, routes_file: Path) -> tuple[int, int]:
    """(passed, failed) for one case file, printing each case's result."""
    from shared.settings import Settings
    from shared.worker import load_routes

    environ = {**os.environ, **case_file.settings}
    settings = Settings.from_environ(environ)
    table = load_routes(routes_file, environ)
    passed = failed = 0
    for case in case_file.cases:
        problems = run_case(case, table, settings)
        print(f"{'ok  ' if not problems else 'FAIL'} {case_file.path}: {case.name}")
        for problem in problems:
            print(f"       {problem}")
        passed += not problems
        failed += bool(problems)
    return passed, failed


def main(argv: list[str] | None = None) -> int:
    parser = parser_from_doc(__doc__)
    parser.add_argument("cases", nargs="+", metavar="CASES", help="case files (YAML)")
    parser.add_argument("--routes", help="routes file (default: the ROUTES_FILE setting, else routes.yaml)")
    args = parser.parse_args(argv)

    from shared.routing.routes import RoutesError
    from shared.settings import Settings

    routes_file = Path(args.routes) if args.routes else Settings.from_environ().routes_file
    passed = failed = 0
    for name in args.cases:
        try:
            result = run_file(load_cases(Path(name)), routes_file)
        except (CaseFileProblem, RoutesError) as problem:
            print(problem, file=sys.stderr)
            return 2
        passed, failed = passed + result[0], failed + result[1]
    print(f"\n{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
