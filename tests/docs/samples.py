"""The code samples of README.md and docs/*.md, and how each kind is checked (see docs/samples.md).

A fenced block may be preceded by a marker comment that says what it is, e.g.
`<!-- sample: actions events=RunStatusChanged -->`; without one, its kind is worked out from its content.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import runpy
import shlex
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[2]
MARKER = re.compile(r"<!--\s*sample:\s*(?P<kind>[\w-]+)(?P<options>[^>]*?)\s*-->")
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,})(?P<lang>[\w+-]*)\s*$")
# Top-level folders whose files docs may name in backticks: each such name must exist.
REPO_FOLDERS = ("shared", "handlers", "tests", "scripts", "bench", "docs", "infra", "pipelines", "templates")
PATH_IN_BACKTICKS = re.compile(rf"`((?:{'|'.join(REPO_FOLDERS)})/[\w./-]*)`")
LINK = re.compile(r"\]\((?!https?:|mailto:)([^)#\s]*)(?:#([^)\s]*))?\)")  # relative target, anchor
# A Python script run without the project's interpreter (`python scripts/x.py`, `python3 bench/run.py`).
BARE_PYTHON = re.compile(r"(?<![\w/.-])python3?(?:\.\d+)? +(?:-m +\S+ +)?(?:scripts|bench)/")


def doc_files() -> list[Path]:
    """README.md and every page under docs/, so a new page is checked without registering it."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def anchors(page: Path) -> set[str]:
    """The anchors of a page's headings, as GitHub makes them."""
    found = set()
    for line in page.read_text(encoding="utf-8").splitlines():
        if heading := re.match(r"#{1,6} +(.*)", line):
            found.add(re.sub(r"[^\w\- ]", "", heading[1].strip().lower()).replace(" ", "-"))
    return found


def relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # of the opening fence, 1-based
    lang: str
    text: str
    kind: str | None = None  # from the marker comment, if any
    options: dict[str, str] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"{relative(self.path)}:{self.line}"


def blocks(path: Path) -> list[Block]:
    found: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        start, indent, fence = index, opening["indent"], opening["fence"]
        index += 1
        body: list[str] = []
        while index < len(lines) and lines[index].strip() != fence:
            body.append(lines[index].removeprefix(indent))
            index += 1
        index += 1
        kind, options = _marker(lines, start)
        text = "\n".join(body) + "\n"
        found.append(Block(path, start + 1, opening["lang"].lower(), text, kind, options))
    return found


def _marker(lines: list[str], fence_index: int) -> tuple[str | None, dict[str, str]]:
    previous = fence_index - 1
    while previous >= 0 and not lines[previous].strip():
        previous -= 1
    match = MARKER.search(lines[previous]) if previous >= 0 else None
    if not match:
        return None, {}
    options = dict(part.split("=", 1) for part in match["options"].split() if "=" in part)
    return match["kind"], options


def all_blocks(*langs: str) -> Iterator[Block]:
    for path in doc_files():
        for block in blocks(path):
            if block.lang in langs:
                yield block


# --- commands --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    text: str
    output: str  # what a console block shows after it ("" in bash blocks)


def commands(block: Block) -> list[Command]:
    """The commands of a console block (`$ ` lines, each with the output shown under it) or a bash block."""
    found: list[Command] = []
    if block.lang == "console":
        for line in block.text.splitlines():
            if line.startswith("$ "):
                found.append(Command(line[2:], ""))
            elif found:
                found[-1] = Command(found[-1].text, found[-1].output + line + "\n")
        return found
    joined = block.text.replace("\\\n", " ")
    lines = [line.strip() for line in joined.splitlines()]
    return [Command(line, "") for line in lines if line and not line.startswith("#")]


def words(command: str) -> list[str]:
    """The first simple command of a shell line: its words up to a pipe, redirection or `;`."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.commenters = "#"
    lexer.whitespace_split = True
    result: list[str] = []
    for word in lexer:
        if word and set(word) <= set("|&;<>()"):
            break
        result.append(word)
    while result and re.fullmatch(r"[A-Za-z_]\w*=.*", result[0]):  # leading NAME=value assignments
        result.pop(0)
    return result


class _Parsed(Exception):
    """Raised by the patched parse_args once a script's arguments parsed."""


def argument_problem(script: Path, args: list[str]) -> str | None:
    """None if `script` exists and its argparse parser accepts `args`; otherwise what is wrong.

    The script runs in this process as `__main__` until it has parsed its arguments, then stops: nothing
    it would do afterwards (storage, network) happens."""
    if not script.is_file():
        return f"{relative(script)} does not exist"
    if "parse_args(" not in script.read_text(encoding="utf-8"):  # no argparse parser
        return f"{relative(script)} takes no arguments" if args else None
    parse_args = argparse.ArgumentParser.parse_args

    def parse_then_stop(self: argparse.ArgumentParser, *a: object, **k: object) -> argparse.Namespace:
        parse_args(self, *a, **k)
        raise _Parsed

    errors = io.StringIO()
    with (
        mock.patch.object(argparse.ArgumentParser, "parse_args", parse_then_stop),
        mock.patch.object(sys, "argv", [str(script), *args]),
        contextlib.redirect_stderr(errors),
        contextlib.redirect_stdout(io.StringIO()),
    ):
        try:
            runpy.run_path(str(script), run_name="__main__")
        except _Parsed:
            return None
        except SystemExit as stop:
            if stop.code in (0, None):
                return None  # --help
            return f"{relative(script)} refuses {shlex.join(args)!r}: {errors.getvalue().strip()}"
    return f"{relative(script)} finished without parsing its arguments"


def command_problem(command: str) -> str | None:
    """What is wrong with a documented command line, as far as can be told without running it."""
    if BARE_PYTHON.search(command):
        return f"{command!r}: run scripts with the project's interpreter, `.venv/bin/python scripts/...`"
    argv = words(command)
    if not argv:
        return None
    if argv[0] == ".venv/bin/python" and len(argv) > 1 and argv[1].endswith(".py"):
        return argument_problem(ROOT / argv[1], argv[2:])
    if argv[0].startswith("scripts/") or argv[0].startswith("./scripts/"):
        script = ROOT / argv[0]
        if not script.is_file():
            return f"{argv[0]} does not exist"
        if not script.stat().st_mode & 0o111:
            return f"{argv[0]} is not executable"
    return None


# --- console sessions -------------------------------------------------------------------------------------

_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2}| UTC)?")


def normalise(text: str) -> list[str]:
    """Output lines with what differs from run to run (times, silence ids, process ids) masked."""
    text = _TIME.sub("<time>", text)
    text = re.sub(r"\bsilence [0-9a-f]{8}\b|^[0-9a-f]{8}(?=  )", "silence <id>", text, flags=re.MULTILINE)
    text = re.sub(r"\bPID \d+", "PID <pid>", text)
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return _in_event_order(lines)


def _event_of(line: str) -> str | None:
    """The event a line of a replay or history table (or a history JSON line) is about."""
    if match := re.search(r'"event_id": "([^"]*)"', line):
        return match[1]
    tokens = [token for token in line.split() if token != "<time>"]
    return tokens[0] if tokens and re.fullmatch(r"[\w-]{6,}", tokens[0]) else None


def _in_event_order(lines: list[str]) -> list[str]:
    """A route's actions run concurrently, so the lines of one event come in any order: sort each run of them."""
    result: list[str] = []
    start = 0
    while start < len(lines):
        end, event = start + 1, _event_of(lines[start])
        while event and end < len(lines) and _event_of(lines[end]) == event:
            end += 1
        result += sorted(lines[start:end])
        start = end
    return result


def output_matches(expected: list[str], actual: list[str]) -> bool:
    """`...` alone on a line stands for any number of lines; a line ending in `…` for any line it begins."""
    memo: dict[tuple[int, int], bool] = {}

    def match(i: int, j: int) -> bool:
        if (i, j) not in memo:
            if i == len(expected):
                result = j == len(actual)
            elif expected[i] == "...":
                result = match(i + 1, j) or (j < len(actual) and match(i, j + 1))
            elif j == len(actual):
                result = False
            elif expected[i].endswith("…"):
                result = actual[j].startswith(expected[i][:-1]) and match(i + 1, j + 1)
            else:
                result = expected[i] == actual[j] and match(i + 1, j + 1)
            memo[i, j] = result
        return memo[i, j]

    return match(0, 0)


SEPARATOR = "@@@ sample command {} finished"


def session_script(commands_run: list[Command]) -> str:
    """One bash script running the commands in order, as a reader types them into one terminal."""
    lines = ["trap 'kill $(jobs -p) 2>/dev/null' EXIT"]  # whatever the reader left running
    for number, command in enumerate(commands_run):
        lines += [command.text, f"printf '\\n%s\\n' {shlex.quote(SEPARATOR.format(number))}"]
    return "\n".join(lines) + "\n"


def split_outputs(stdout: str, count: int) -> list[str]:
    outputs, rest = [], stdout
    for number in range(count):
        marker = "\n" + SEPARATOR.format(number) + "\n"
        head, found, rest = rest.partition(marker)
        outputs.append(head if found else head + rest)
        if not found:
            rest = ""
    return outputs


NOT_RUN = {"output"}  # console blocks that show output without being run (the page says why)


def session_blocks(page: Path) -> list[Block]:
    """The console blocks of a page that are run, in order."""
    return [block for block in blocks(page) if block.lang == "console" and block.kind not in NOT_RUN]


@dataclass(frozen=True)
class Ran:
    block: Block
    command: Command
    printed: str

    @property
    def matches(self) -> bool:
        return output_matches(normalise(self.command.output), normalise(self.printed))


# The app settings naming the storage a session uses: fresh names per session, so nothing leaks in from elsewhere.
STORAGE_NAMES = ("LEDGER_TABLE", "REJECTED_TABLE", "GUARDRAIL_TABLE", "SILENCE_TABLE", "DIGEST_TABLE")


def run_session(page: Path, scratch: Path, storage: str) -> list[Ran]:
    """Run the page's console blocks in order in one shell from the repository root, as a reader would.

    `storage` is the connection string of an Azurite the session may use (the README's walkthrough starts
    its own); the app's tables get names of their own."""
    session = [(block, command) for block in session_blocks(page) for command in commands(block)]
    suffix = uuid.uuid4().hex[:8]
    script = scratch / "session.sh"
    script.write_text(session_script([command for _, command in session]))
    environment = {
        **{name: os.environ[name] for name in ("PATH", "HOME", "LANG", "TMPDIR", "USER") if name in os.environ},
        "PYTHONUNBUFFERED": "1",  # stdout and stderr in the order a terminal shows them
        "EMAIL_OUTBOX": str(scratch / "outbox"),  # emails go here, not into the repository's outbox/
        "AzureWebJobsStorage": storage,
        # The checkout under test, also where .venv belongs to another (worktrees share one .venv).
        "PYTHONPATH": str(ROOT),
        **{name: f"{name.split('_')[0].lower()}{suffix}" for name in STORAGE_NAMES},
    }
    bash = shutil.which("bash") or "/bin/bash"
    result = subprocess.run(
        [bash, str(script)], cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, timeout=600,
    )  # fmt: skip
    printed = split_outputs(result.stdout, len(session))
    return [Ran(block, command, out) for (block, command), out in zip(session, printed, strict=True)]


def refresh(page: Path) -> int:
    """Write what the commands print now under each console command whose shown output no longer matches."""
    from scripts import azurite

    running = azurite.start()
    try:
        with tempfile.TemporaryDirectory() as scratch:
            ran = run_session(page, Path(scratch), running.connection_string)
    finally:
        running.stop()
    lines = page.read_text(encoding="utf-8").splitlines()
    changed = 0
    for block in reversed(session_blocks(page)):
        body: list[str] = []
        for run in (r for r in ran if r.block == block):
            body.append("$ " + run.command.text)
            kept = run.command.output if run.matches else run.printed
            changed += not run.matches
            body += [line.rstrip() for line in kept.rstrip("\n").splitlines()] if kept.strip() else []
        end = block.line + len(block.text.splitlines())
        lines[block.line : end] = body
    page.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return changed


if __name__ == "__main__":
    for name in sys.argv[1:]:
        print(f"{name}: {refresh(Path(name).resolve())} output(s) rewritten")
