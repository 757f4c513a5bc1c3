"""The sample events in tests/events/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).resolve().parent.parent / "events"


def load_event(relative: str) -> dict[str, Any]:
    """The first event of a sample file in tests/events/."""
    decoded = json.loads((EVENTS / relative).read_text())
    return decoded[0] if isinstance(decoded, list) else decoded
