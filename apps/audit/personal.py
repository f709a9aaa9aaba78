"""Declaring where personal data is shown, so each showing leaves an audit entry.

Three ways in, all ending in :func:`apps.audit.recorder.audit_personal_read`:

- an API output serializer takes :class:`PersonalDataSerializerMixin` and names its
  personal fields: each object serialised with a ``request`` in the context whose
  fields are not empty is recorded (lists too: one entry per object);
- a model admin takes :class:`PersonalDataAdminMixin`: its change page (GET) and, when
  the list shows a personal field, its list page record the objects shown;
- anything else calls ``audit_personal_read`` where it builds the answer.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.http import HttpRequest, HttpResponse

from apps.audit.recorder import audit_personal_read

__all__ = ["PersonalDataAdminMixin", "PersonalDataSerializerMixin", "audit_personal_read"]


class PersonalDataSerializerMixin:
    """Put first in an output serializer's bases; set ``audit_object_type`` (a model
    label, ``incidents.report``) and ``audit_personal_fields``."""

    audit_object_type: ClassVar[str] = ""
    audit_personal_fields: ClassVar[tuple[str, ...]] = ()

    def to_representation(self, instance: Any) -> Any:
        data = super().to_representation(instance)  # type: ignore[misc]
        request = getattr(self, "context", {}).get("request")
        if request is not None:
            shown = [name for name in self.audit_personal_fields if data.get(name)]
            if shown:
                audit_personal_read(
                    request,
                    object_type=self.audit_object_type,
                    object_ids=[instance.pk],
                    fields=shown,
                )
        return data


class PersonalDataAdminMixin:
    """Put first in a model admin's bases; set ``audit_personal_fields``."""

    audit_personal_fields: ClassVar[tuple[str, ...]] = ()

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        response = super().change_view(request, object_id, form_url, extra_context)  # type: ignore[misc]
        if request.method == "GET" and response.status_code == 200:
            original = (getattr(response, "context_data", None) or {}).get("original")
            if original is not None:
                self._audit_shown(request, [original], self.audit_personal_fields)
        return response

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        response = super().changelist_view(request, extra_context)  # type: ignore[misc]
        listed = set(self.get_list_display(request))  # type: ignore[attr-defined]
        fields = tuple(name for name in self.audit_personal_fields if name in listed)
        changelist = (getattr(response, "context_data", None) or {}).get("cl")
        if fields and changelist is not None and response.status_code == 200:
            self._audit_shown(request, changelist.result_list, fields)
        return response

    def _audit_shown(self, request: HttpRequest, objects: Any, fields: tuple[str, ...]) -> None:
        label = self.model._meta.label_lower  # type: ignore[attr-defined]
        by_fields: dict[tuple[str, ...], list[Any]] = {}
        for obj in objects:
            shown = tuple(name for name in fields if getattr(obj, name, None))
            if shown:
                by_fields.setdefault(shown, []).append(obj.pk)
        for shown, ids in by_fields.items():
            audit_personal_read(request, object_type=label, object_ids=ids, fields=shown)
