"""The embedded email sink: each email as an .eml file in a folder, when no Communication Services
resource is configured. The file is named after the ledger key, so a retry overwrites it rather
than leaving a second copy."""

from __future__ import annotations

import email.policy
import os
import re
from collections.abc import Mapping
from pathlib import Path

from handlers.email.message import OutgoingEmail, id_for
from shared.settings import APP_ROOT

DEFAULT_OUTBOX = "outbox"


def outbox_folder(environ: Mapping[str, str]) -> Path:
    """EMAIL_OUTBOX, relative to the app root unless absolute; default ./outbox."""
    folder = Path(environ.get("EMAIL_OUTBOX") or DEFAULT_OUTBOX)
    return folder if folder.is_absolute() else APP_ROOT / folder


def write_eml(folder: Path, ledger_key: str, message: OutgoingEmail) -> Path:
    """Write atomically (a reader never sees half a file); returns the file's path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (re.sub(r"[^A-Za-z0-9._-]+", "_", ledger_key)[:200] + ".eml")
    partial = path.with_suffix(".eml.partial")
    partial.write_bytes(message.to_mime(id_for(ledger_key)).as_bytes(policy=email.policy.SMTP))
    os.replace(partial, path)
    return path
