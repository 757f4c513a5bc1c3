"""Bounds on what a configuration file may cost to load: its size and the size of the document once
aliases are expanded (a "billion laughs" alias bomb is a few hundred bytes). A file past a bound is a
YAML error at the line where the bound was crossed, like any other syntax problem."""

from __future__ import annotations

from typing import Any

import yaml

MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_NODES = 200_000  # nodes of the document with every alias expanded; a large routes.yaml has ~20,000


class LimitExceeded(yaml.MarkedYAMLError):
    """A bound was crossed; `problem_mark` says where."""


def check_size(text: str) -> None:
    """Raises LimitExceeded when `text` is larger than MAX_FILE_BYTES (marked where it crosses it)."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size <= MAX_FILE_BYTES:
        return
    cut = text.encode("utf-8", "surrogatepass")[:MAX_FILE_BYTES].decode("utf-8", "ignore")
    line = cut.count("\n")
    raise LimitExceeded(
        problem=f"the file is larger than {MAX_FILE_BYTES:,} bytes",
        problem_mark=yaml.Mark("<file>", len(cut), line, 0, None, None),
    )


def check_expanded_size(root: yaml.Node | None) -> None:
    """Raises LimitExceeded when the document, with aliases expanded, has more than MAX_NODES nodes.
    Each node is counted once per place it appears, computed without expanding anything."""
    if root is None:
        return
    sizes: dict[int, int] = {}
    entered: set[int] = set()
    # Iterative post-order walk: a deep document must not exhaust the stack either.
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        children = _children(node)
        if not children_done and any(id(child) not in sizes for child in children):
            if id(node) in entered:
                raise LimitExceeded(problem="an alias refers to a value that contains it", problem_mark=node.start_mark)
            entered.add(id(node))
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in sizes)
            continue
        size = 1 + sum(sizes.get(id(child), 0) for child in children)
        if size > MAX_NODES:
            raise LimitExceeded(
                problem=f"the document expands to more than {MAX_NODES:,} values (aliases repeat what they name)",
                problem_mark=node.start_mark,
            )
        sizes[id(node)] = size


def _children(node: Any) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []
