"""Blob storage events (`Microsoft.Storage.BlobCreated`, `BlobDeleted`): new data for Azure ML.

The topic is the storage account, the subject `/blobServices/default/containers/<container>/blobs/<path>`.
The subject names the blob: Microsoft's own sample spells the container differently in `url`, and
`url` is percent-encoded and points at the `dfs` endpoint on accounts with a hierarchical namespace.

When the app setting DATASTORES maps the account and container to an Azure ML datastore, the event
carries the datastore's name and workspace, and `azureml://` URIs to its blobs:

    DATASTORES = stcontosodata/training-data=azureml://subscriptions/<sub>/resourcegroups/<rg>/workspaces/<ws>/datastores/training_data

(entries separated by commas, spaces or new lines).
"""

from __future__ import annotations

import logging
import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlsplit

from shared.events.arm import SourceEvent, parse_resource_id, text_field
from shared.events.model import EventRejected, get_ci
from shared.events.workspace import Workspace
from shared.settings import current_settings

logger = logging.getLogger("aml_events")

DATASTORES_SETTING = "DATASTORES"
_SUBJECT = re.compile(r"^/blobServices/default/containers/(?P<container>[^/]+)/blobs/(?P<path>.+)$")
_DATASTORE_URI = re.compile(
    r"^azureml://subscriptions/(?P<subscription>[^/]+)/resourcegroups/(?P<group>[^/]+)"
    r"/workspaces/(?P<workspace>[^/]+)/datastores/(?P<name>[^/]+)/?$",
    re.IGNORECASE,
)
_ACCOUNT_FORM = "/subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.Storage/storageAccounts/<name>"
_SUBJECT_FORM = "/blobServices/default/containers/<container>/blobs/<path>"
_MAX_PATH = 1024  # Blob names are at most 1,024 characters


@dataclass(frozen=True)
class Datastore:
    """An Azure ML datastore over one blob container."""

    workspace: Workspace
    name: str

    def uri(self, path: str) -> str:
        """`azureml://` URI of a path in the datastore (a folder when `path` ends in `/` or is empty)."""
        ws = self.workspace
        return (
            f"azureml://subscriptions/{ws.subscription_id}/resourcegroups/{ws.resource_group}"
            f"/workspaces/{ws.name}/datastores/{self.name}/paths/{path}"
        )


def parse_datastores(text: str) -> tuple[dict[tuple[str, str], Datastore], list[str]]:
    """The DATASTORES setting -> {(account, container): Datastore}, and the problems found."""
    found: dict[tuple[str, str], Datastore] = {}
    problems = []
    for entry in re.split(r"[,\s]+", text.strip()):
        if not entry:
            continue
        key, _, uri = entry.partition("=")
        account, _, container = key.partition("/")
        match = _DATASTORE_URI.match(uri)
        if not account or not container or "/" in container or not match:
            problems.append(
                f"{DATASTORES_SETTING}: {entry[:200]!r} is not <account>/<container>=azureml://subscriptions/<sub>"
                "/resourcegroups/<rg>/workspaces/<workspace>/datastores/<name>"
            )
            continue
        workspace = Workspace(match["subscription"], match["group"], match["workspace"])
        found[(account.lower(), container.lower())] = Datastore(workspace, match["name"])
    return found, problems


@lru_cache(maxsize=4)
def _datastores(text: str) -> dict[tuple[str, str], Datastore]:
    found, problems = parse_datastores(text)
    for problem in problems:
        logger.warning("%s; that entry is ignored", problem)
    return found


def datastore_for(account: str, container: str) -> Datastore | None:
    text = current_settings().environ.get(DATASTORES_SETTING) or ""
    return _datastores(text).get((account.lower(), container.lower())) if text else None


class BlobEvent(SourceEvent):
    account: str
    container: str
    blob_path: str
    folder: str  # the blob's folder, "" at the container's root, else ending in "/"
    size: int | None
    content_type: str | None
    etag: str | None
    blob_type: str | None
    api: str | None
    url: str | None
    datastore: str | None
    datastore_uri: str | None  # azureml:// URI of the blob when its container is a datastore
    # The `data` keys routes can name (docs/fields.md); `account` … `datastore` are added by the app.
    FIELDS = (
        ("account", "account", "str", True),
        ("container", "container", "str", True),
        ("blob_path", "blobPath", "str", True),
        ("folder", "folder", "str", True),
        ("datastore", "datastore", "str", False),
        ("size", "contentLength", "number", False),
        ("content_type", "contentType", "str", False),
        ("etag", "eTag", "str", False),
        ("blob_type", "blobType", "str", False),
        ("api", "api", "str", False),
        ("url", "url", "str", False),
        ("", "sequencer", "str", False),
        ("", "contentOffset", "number", False),
        ("", "clientRequestId", "str", False),
        ("", "requestId", "str", False),
        ("", "storageDiagnostics", "object", False),
    )

    @classmethod
    def read(
        cls, topic: str, subject: str, data: Mapping[str, Any]
    ) -> tuple[Workspace | None, dict[str, Any], dict[str, Any]]:
        resource = parse_resource_id(topic)
        if resource is None or resource.type.lower() != "microsoft.storage/storageaccounts":
            raise EventRejected("topic", f"{topic[:200]!r} is not a storage account id ({_ACCOUNT_FORM})")
        match = _SUBJECT.match(subject)
        if not match or len(match["path"]) > _MAX_PATH:
            raise EventRejected("subject", f"{subject[:200]!r} is not {_SUBJECT_FORM}")
        account, container, path = resource.name, match["container"], match["path"]
        store = datastore_for(account, container)
        folder = posixpath.dirname(path)
        fields = {
            "account": account,
            "container": container,
            "blob_path": path,
            "folder": f"{folder}/" if folder else "",
            "size": _size(data),
            "content_type": text_field(data, "contentType"),
            "etag": text_field(data, "eTag"),
            "blob_type": text_field(data, "blobType"),
            "api": text_field(data, "api"),
            "url": text_field(data, "url"),
            "datastore": store.name if store else None,
            "datastore_uri": store.uri(path) if store else None,
        }
        derived = {"account": account, "container": container, "blobPath": path, "folder": fields["folder"]}
        if store:
            derived["datastore"] = store.name
        return (store.workspace if store else None), fields, {**data, **derived}

    @property
    def title(self) -> str:
        size = f" ({human_size(self.size)})" if self.size is not None else ""
        return f"Blob {self.container}/{self.blob_path} {self.status.lower()}{size}"

    def facts(self) -> list[tuple[str, str]]:
        facts = [
            ("Storage account", self.account),
            ("Container", self.container),
            ("Blob", self.blob_path),
            ("Size", human_size(self.size) if self.size is not None else ""),
            ("Content type", self.content_type or ""),
            ("Datastore", self.datastore or ""),
        ]
        return [*super().facts(), *facts]


class BlobCreated(BlobEvent):
    STATUS = "Created"


class BlobDeleted(BlobEvent):
    STATUS = "Deleted"


def _size(data: Mapping[str, Any]) -> int | None:
    value = get_ci(data, "contentLength")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise EventRejected("data.contentLength", f"must be a whole number of bytes, got {type(value).__name__}")
    try:
        number = float(value)
    except ValueError:
        raise EventRejected("data.contentLength", f"must be a whole number of bytes, got {value!r:.40}") from None
    if number < 0 or number != int(number):
        raise EventRejected("data.contentLength", f"must be a whole number of bytes, got {value!r:.40}")
    return int(number)


def human_size(size: int | None) -> str:
    if size is None:
        return ""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return ""  # unreachable


# ---- many blobs at once: a digest's members, for a pipeline's inputs ------------------------------


class BlobBatchProblem(ValueError):
    """The blobs of a digest cannot be given as one folder (they are in several containers)."""


@dataclass(frozen=True)
class BlobBatch:
    """What templates see as `blobs`: the blob(s) of an event or of a digest of blob events.

    `prefix` is the deepest folder that holds every blob; `prefix_uri` that folder as a remote
    URI (the datastore's `azureml://` when the container is mapped, else the blob endpoint's https URL),
    for a `uri_folder` input; `paths`, `urls` and `uris` list each blob, for a JSON input."""

    events: tuple[BlobEvent, ...]

    @property
    def count(self) -> int:
        return len(self.events)

    @property
    def paths(self) -> list[str]:
        return [event.blob_path for event in self.events]

    @property
    def urls(self) -> list[str]:
        return [_blob_url(event, event.blob_path) for event in self.events]

    @property
    def uris(self) -> list[str]:
        return [event.datastore_uri or _blob_url(event, event.blob_path) for event in self.events]

    @property
    def total_bytes(self) -> int:
        return sum(event.size or 0 for event in self.events)

    @property
    def container(self) -> str:
        return self._one("container")

    @property
    def account(self) -> str:
        return self._one("account")

    @property
    def prefix(self) -> str:
        self._one("container")
        return common_folder(self.paths)

    @property
    def prefix_uri(self) -> str:
        first = self.events[0]
        prefix = self.prefix
        if first.datastore and all(event.datastore == first.datastore for event in self.events):
            return Datastore(first.workspace, first.datastore).uri(prefix)
        return _blob_url(first, prefix)

    def _one(self, name: str) -> str:
        values = {(event.account.lower(), getattr(event, name)) for event in self.events}
        if len(values) != 1:
            raise BlobBatchProblem(
                f"the {self.count} blobs are in {len(values)} different containers: no one folder holds them "
                "(group by data.account and data.container)"
            )
        return str(getattr(self.events[0], name))


def blob_batch(event: Any) -> BlobBatch | None:
    """The blobs of a blob event or a digest of them; None for other events."""
    members = getattr(event, "members", None) or (event,)
    blobs = tuple(member for member in members if isinstance(member, BlobEvent))
    return BlobBatch(blobs) if blobs and len(blobs) == len(members) else None


def common_folder(paths: Sequence[str]) -> str:
    """The deepest folder holding every path: `a/b/` for `a/b/c.csv` and `a/b/d/e.csv`; "" for the root."""
    folders = [path.split("/")[:-1] for path in paths]
    if not folders:
        return ""
    common = folders[0]
    for parts in folders[1:]:
        size = 0
        while size < min(len(common), len(parts)) and common[size] == parts[size]:
            size += 1
        common = common[:size]
    return "".join(f"{part}/" for part in common)


def _blob_url(event: BlobEvent, path: str) -> str:
    """https URL of a blob or folder on the account's blob endpoint (the host as the event's `url`
    gives it, so other clouds work; `dfs` becomes `blob`: one form for every path)."""
    host = f"{event.account}.blob.core.windows.net"
    if event.url:
        parts = urlsplit(event.url)
        if parts.scheme == "https" and parts.hostname:
            host = parts.hostname.replace(".dfs.", ".blob.", 1)
    return f"https://{host}/{event.container}/{quote(path, safe='/')}"
