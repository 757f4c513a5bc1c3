"""Collects validation problems, each tied to a file and line, so a bad routes.yaml lists them all."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Problems:
    source: str
    items: list[tuple[int, str]] = field(default_factory=list)
    context: str = ""  # e.g. "route 'failed-runs'", prefixed to messages added while it is set

    def add(self, line: int, message: str) -> None:
        self.items.append((line, f"{self.context}: {message}" if self.context else message))

    def __bool__(self) -> bool:
        return bool(self.items)

    def lines(self) -> list[str]:
        return [f"{self.source}:{line}: {message}" for line, message in sorted(self.items, key=lambda i: i[0])]
