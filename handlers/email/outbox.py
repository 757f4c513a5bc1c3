"""The embedded email sink: each email as an .eml file in a folder, when no Communication Services
resource is configured. The file is named after the ledger key, so a retry overwrites it rather
than leaving a second copy."""

from __future__ import annotations

import email.policy
import os
import re
from pathlib import Path

from handlers.email.message import OutgoingEmail, id_for


def write_eml(folder: Path, ledger_key: str, message: OutgoingEmail) -> Path:
    """Write atomically (a reader never sees half a file); returns the file's path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (re.sub(r"[^A-Za-z0-9._-]+", "_", ledger_key)[:200] + ".eml")
    partial = path.with_suffix(".eml.partial")
    partial.write_bytes(message.to_mime(id_for(ledger_key)).as_bytes(policy=email.policy.SMTP))
    os.replace(partial, path)
    return path
