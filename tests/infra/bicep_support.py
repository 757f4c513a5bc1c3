"""Parsing helpers shared by the infra tests: every .bicep file under infra/, parsed once."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import tree_sitter_bicep
from pycep import BicepParser
from tree_sitter import Language, Parser

REPO_ROOT = Path(__file__).resolve().parents[2]
INFRA = REPO_ROOT / "infra"
BICEP_FILES = sorted(INFRA.rglob("*.bicep"))

RESOURCE_DECLARATION = re.compile(r"^\s*resource\s+(\w+)\s+'([^'@]+)@([^']+)'", re.MULTILINE)


def relative(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT))


def syntax_errors(source: bytes) -> list[str]:
    """ERROR / MISSING nodes of the tree-sitter-bicep parse, as 'line:col type'."""
    tree = Parser(Language(tree_sitter_bicep.language())).parse(source)
    found: list[str] = []

    def walk(node: Any) -> None:
        if node.is_error or node.is_missing:
            found.append(f"{node.start_point[0] + 1}:{node.start_point[1] + 1} {node.type}")
        for child in node.children:
            walk(child)

    walk(tree.root_node)
    return found


@functools.cache
def _bicep_parser() -> BicepParser:
    return BicepParser()  # builds its grammar once (about a second)


@functools.cache
def parsed(path: Path) -> dict[str, Any]:
    """pycep-parser's JSON-like view of one template."""
    return _bicep_parser().parse(file_path=path)


def resources_of_type(resource_type: str) -> list[tuple[Path, str, dict[str, Any]]]:
    """(file, symbolic name, resource) for every declaration of that type across infra/."""
    found = []
    for path in BICEP_FILES:
        for name, resource in parsed(path).get("resources", {}).items():
            if resource["type"] == resource_type:
                found.append((path, name, resource))
    return found


def config(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource body, looking through a loop or a deploy condition."""
    body = resource["config"]
    while "config" in body and ("loop_type" in body or "condition" in body):
        body = body["config"]
    return body


def accessor(expression: Any) -> str | None:
    """`a.b.c` for a pycep property-accessor chain (or a bare name), else None."""
    if isinstance(expression, str):
        return expression
    if isinstance(expression, dict) and expression.get("operator", {}).get("type") == "property_accessor":
        left = accessor(expression["operator"]["operands"]["operand_1"])
        right = accessor(expression["operator"]["operands"]["operand_2"])
        return f"{left}.{right}" if left and right else None
    return None
