"""The event types from outside the workspace, by full type name: storage (blobs), Azure Policy,
Resource Manager. Each class reads its own payload (`SourceEvent.read`, shared/events/arm.py)."""

from __future__ import annotations

from shared.events.arm import SourceEvent
from shared.events.blobs import BlobCreated, BlobDeleted
from shared.events.policy import PolicyStateChanged, PolicyStateCreated, PolicyStateDeleted
from shared.events.resources import RESOURCE_EVENT_CLASSES

SOURCE_EVENT_CLASSES: dict[str, type[SourceEvent]] = {
    **{f"Microsoft.Storage.{cls.__name__}": cls for cls in (BlobCreated, BlobDeleted)},
    **{
        f"Microsoft.PolicyInsights.{cls.__name__}": cls
        for cls in (PolicyStateCreated, PolicyStateChanged, PolicyStateDeleted)
    },
    **{f"Microsoft.Resources.{cls.__name__}": cls for cls in RESOURCE_EVENT_CLASSES},
}


def default_condition(event_type: str) -> tuple[str, str, str] | None:
    """The `when:` condition a route on `event_type` gets unless it has one on the same path."""
    cls = SOURCE_EVENT_CLASSES.get(event_type)
    return cls.DEFAULT_CONDITION if cls is not None else None
