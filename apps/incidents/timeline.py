"""The append-only incident timeline (conventions R11): rows are only ever inserted."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from apps.incidents.models import Incident, IncidentEvent


def timeline_append(
    *,
    incident: Incident,
    kind: str,
    actor: Any = None,
    data: dict[str, Any] | None = None,
    public: bool = False,
) -> IncidentEvent:
    """Write one timeline row. Call inside the transaction of the change it records."""
    actor_obj = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    return IncidentEvent.objects.create(
        incident=incident,
        kind=kind,
        at=timezone.now(),
        actor=actor_obj,
        data=data or {},
        public=public,
    )
