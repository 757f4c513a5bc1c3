"""Rejected inputs kept whole: the payload as bytes, and the blob container that holds the payloads too
long (or not text enough) to sit in their record."""

from __future__ import annotations

import json
from typing import Any

from shared.settings import Settings


def payload_bytes(raw: Any) -> bytes:
    """A rejected input as bytes: exactly as received when it was bytes or text, else as JSON."""
    if isinstance(raw, bytes):
        return raw
    if isinstance(raw, str):
        return raw.encode("utf-8", "surrogatepass")
    return json.dumps(raw, default=str).encode("utf-8")


class RejectedPayloads:
    """The `rejected` blob container (REJECTED_CONTAINER), created on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def _container(self) -> Any:
        from shared.platform.storage import blob_service  # the blob SDK only when a payload needs it

        return blob_service(self.settings).get_container_client(self.settings.rejected_container)

    def upload(self, name: str, payload: bytes) -> None:
        from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

        container = self._container()
        try:
            container.upload_blob(name, payload, overwrite=True)
        except ResourceNotFoundError:
            try:
                container.create_container()
            except ResourceExistsError:
                pass
            container.upload_blob(name, payload, overwrite=True)

    def download(self, name: str) -> bytes:
        return self._container().download_blob(name).readall()
