"""A stub `az` and `azd` for the hook tests: every call is recorded (with the content of any
`@file` argument, as Azure would read it), and `az` answers from scripted rules the way the
Azure CLI does (JSON on stdout, `ERROR: (Code) message` on stderr, exit status 1).

`azd env get-values` / `azd env set` work on a small JSON store, like azd's .env file."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STUB = """#!{python}
import sys
sys.path.insert(0, {root!r})
from tests.infra.azure_stub import serve
raise SystemExit(serve({tool!r}, sys.argv[1:]))
"""


def _load(path: Path, default: Any) -> Any:
    return json.loads(path.read_text()) if path.exists() else default


def serve(tool: str, argv: list[str]) -> int:
    state = Path(os.environ["AZURE_STUB_DIR"])
    files = {a[1:]: Path(a[1:]).read_text() for a in argv if a.startswith("@") and Path(a[1:]).is_file()}
    with (state / "calls.jsonl").open("a") as log:
        log.write(json.dumps({"tool": tool, "argv": argv, "files": files}) + "\n")
    if tool == "azd":
        return _azd(state, argv)
    rules = _load(state / "rules.json", [])
    used = _load(state / "used.json", {})
    for index, rule in enumerate(rules):
        if not all(token in argv for token in rule["match"]):
            continue
        if rule.get("times") is not None and used.get(str(index), 0) >= rule["times"]:
            continue
        used[str(index)] = used.get(str(index), 0) + 1
        (state / "used.json").write_text(json.dumps(used))
        if rule["stdout"] is not None:
            out = rule["stdout"]
            sys.stdout.write(out if isinstance(out, str) else json.dumps(out))
        sys.stderr.write(rule["stderr"])
        return rule["rc"]
    sys.stderr.write(f"ERROR: stub az has no answer for: az {' '.join(argv)}\n")
    return 2


def _azd(state: Path, argv: list[str]) -> int:
    store = state / "azd-env.json"
    values = _load(store, {})
    if argv[:2] == ["env", "get-values"]:
        for key, value in values.items():
            sys.stdout.write(f'{key}="{value}"\n')
        return 0
    if argv[:2] == ["env", "set"] and len(argv) == 4:
        values[argv[2]] = argv[3]
        store.write_text(json.dumps(values))
        return 0
    sys.stderr.write(f"ERROR: stub azd does not know: azd {' '.join(argv)}\n")
    return 2


def az_error(code: str, message: str) -> str:
    """stderr as the Azure CLI prints an ARM error."""
    return f"ERROR: ({code}) {message}\nCode: {code}\nMessage: {message}\n"


@dataclass
class Call:
    tool: str
    argv: list[str]
    files: dict[str, str] = field(default_factory=dict)

    def option(self, name: str) -> str | None:
        return self.argv[self.argv.index(name) + 1] if name in self.argv else None

    @property
    def parameters(self) -> dict[str, Any]:
        """The deployment parameters passed as `--parameters @file`."""
        path = self.option("--parameters")
        assert path and path.startswith("@"), self.argv
        return {k: v["value"] for k, v in json.loads(self.files[path[1:]])["parameters"].items()}

    def has(self, *tokens: str) -> bool:
        return all(token in self.argv for token in tokens)


class Azure:
    """The stub's rules, calls and azd environment for one test."""

    def __init__(self, directory: Path, repo_root: Path) -> None:
        self.dir = directory
        self.bin = directory / "bin"
        self.bin.mkdir(parents=True)
        for tool in ("az", "azd"):
            script = self.bin / tool
            script.write_text(STUB.format(python=sys.executable, root=str(repo_root), tool=tool))
            script.chmod(0o755)
        self.rules: list[dict[str, Any]] = []
        self._save()

    def _save(self) -> None:
        (self.dir / "rules.json").write_text(json.dumps(self.rules))

    def answer(self, *match: str, stdout: Any = None, stderr: str = "", rc: int = 0, times: int | None = None) -> None:
        """Answer calls containing every token of ``match``; earlier rules win while they have uses left."""
        self.rules.append({"match": list(match), "stdout": stdout, "stderr": stderr, "rc": rc, "times": times})
        self._save()

    def fail(self, *match: str, code: str, message: str, times: int | None = None) -> None:
        self.answer(*match, stderr=az_error(code, message), rc=1, times=times)

    def set_env(self, **values: str) -> None:
        store = self.dir / "azd-env.json"
        store.write_text(json.dumps({**_load(store, {}), **values}))

    @property
    def env(self) -> dict[str, str]:
        return _load(self.dir / "azd-env.json", {})

    def calls(self, tool: str = "az") -> list[Call]:
        path = self.dir / "calls.jsonl"
        lines = path.read_text().splitlines() if path.exists() else []
        return [Call(**json.loads(line)) for line in lines if json.loads(line)["tool"] == tool]

    def process_env(self, **extra: str) -> dict[str, str]:
        """Environment for a hook run: only the stubs (and basic tools) on PATH, no retry waits."""
        return {
            "PATH": f"{self.bin}:/usr/bin:/bin",
            "HOME": str(self.dir),
            "AZURE_STUB_DIR": str(self.dir),
            "DEPLOY_RETRY_SECONDS": "0",
            "POSTDEPLOY_RETRY_SECONDS": "0",
            **extra,
        }
