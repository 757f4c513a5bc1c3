"""Examples taken from the documentation, so that the tests run what the docs show."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def readme_route(name: str) -> str:
    """The YAML example in README.md or a page under docs/ whose route is `name`, as a routes file."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    text = "".join(page.read_text(encoding="utf-8") for page in pages)
    block = next(b.split("```", 1)[0] for b in text.split("```yaml\n")[1:] if f"- name: {name}\n" in b)
    return "routes:\n" + "".join(f"  {line}\n" for line in block.splitlines())
