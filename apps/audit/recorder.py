"""Collecting audit entries during a request and writing them after the response.

What is recorded (``AuditEntry``):

- **Every write** (POST, PUT, PATCH, DELETE) through the API (``/api/``, ``/open311/``)
  or the admin (``/admin/``), whatever its outcome: who (the user, ``None`` for an
  anonymous citizen), when (the request's arrival), what (method, path, the URL name
  as ``view``, the object's type and id where the URL, the admin's own log entry or a
  201 answer names it), how it ended (the status code) and from where (the client
  address by ``apps.core.client_address``, the user agent). Bodies are never stored:
  they carry passwords, codes and citizens' words.
- **Every read of personal data** that a view or admin page declares with
  :func:`audit_personal_read`: one row per person or object whose data was shown, with
  the fields in ``detail`` — who read whose phone number.

How: :class:`apps.audit.middleware.AuditMiddleware` opens a :class:`RequestAudit` for
each request (a context variable, so views, admin hooks and signal receivers deep in the
request add to it without passing it around) and, once the response exists, turns it
into rows. The rows are INSERTed in one statement when the server closes the response,
i.e. after the client has its answer, so the trail costs the request nothing it waits
for; a failure there is logged and never reaches the client.

The fast intake path (``apps.incidents.intake``) answers before Django's middleware: its
reports are their own record (``SECURITY.md``, "Audit trail").
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.http import HttpRequest, HttpResponseBase
from django.utils import timezone

from apps.audit.models import AuditEntry
from apps.core.client_address import client_address

logger = logging.getLogger(__name__)

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
API_PREFIXES = ("/api/", "/open311/")
ADMIN_PREFIX = "/admin/"
# URL arguments that are capabilities, not names: never written to the trail.
SECRET_KWARGS = frozenset({"token", "uidb64"})
MAX_SELECTED_IDS = 100

_current: contextvars.ContextVar[RequestAudit | None] = contextvars.ContextVar(
    "xems_request_audit", default=None
)


@dataclass
class PersonalRead:
    object_type: str
    object_ids: list[str]
    fields: list[str]


@dataclass
class RequestAudit:
    """What one request did worth recording; filled while the request runs."""

    request: HttpRequest
    channel: str | None
    at: datetime = field(default_factory=timezone.now)
    object_type: str = ""
    object_id: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
    reads: list[PersonalRead] = field(default_factory=list)

    @property
    def is_write(self) -> bool:
        return self.channel is not None and self.request.method in WRITE_METHODS

    def entries(self, response: HttpResponseBase) -> list[AuditEntry]:
        if not self.is_write and not self.reads:
            return []
        request = self.request
        user = getattr(request, "user", None)
        authenticated = bool(getattr(user, "is_authenticated", False))
        match = getattr(request, "resolver_match", None)
        common = {
            "at": self.at,
            "channel": self.channel or AuditEntry.Channel.API,
            "actor_id": user.pk if authenticated else None,
            "actor_label": (user.get_username() if authenticated else "")[:150],
            "method": (request.method or "")[:8],
            "path": request.path[:300],
            "view": (match.view_name if match else "")[:200],
            "status": response.status_code,
            "client_address": client_address(request)[:64],
            "user_agent": request.META.get("HTTP_USER_AGENT", "")[:300],
        }
        rows = []
        if self.is_write:
            object_type, object_id = self._write_object(response)
            rows.append(
                AuditEntry(
                    action=AuditEntry.Action.WRITE,
                    object_type=object_type[:100],
                    object_id=object_id[:64],
                    detail=self._write_detail(),
                    **common,
                )
            )
        for read in self.reads:
            rows.extend(
                AuditEntry(
                    action=AuditEntry.Action.PERSONAL_READ,
                    object_type=read.object_type[:100],
                    object_id=object_id[:64],
                    detail={"fields": read.fields},
                    **common,
                )
                for object_id in read.object_ids
            )
        return rows

    def _write_object(self, response: HttpResponseBase) -> tuple[str, str]:
        if self.object_type or self.object_id:
            return self.object_type, self.object_id
        match = getattr(self.request, "resolver_match", None)
        if match is None:
            return "", ""
        model_admin = getattr(match.func, "model_admin", None)
        if model_admin is not None:  # an admin page of one model
            return model_admin.model._meta.label_lower, str(match.kwargs.get("object_id", ""))
        for name, value in match.kwargs.items():
            if name.endswith("_id"):
                return name[: -len("_id")], str(value)
        for name, value in match.kwargs.items():
            if name not in SECRET_KWARGS:
                return _route_noun(match.url_name), str(value)
        data = getattr(response, "data", None)
        if response.status_code == 201 and isinstance(data, dict) and "id" in data:
            return _route_noun(match.url_name), str(data["id"])
        return "", ""

    def _write_detail(self) -> dict[str, Any]:
        detail = dict(self.detail)
        if self.channel == AuditEntry.Channel.ADMIN:
            action = self.request.POST.get("action", "") if self._form_body() else ""
            if action:
                detail["admin_action"] = action[:100]
                selected = self.request.POST.getlist("_selected_action")
                detail["selected"] = selected[:MAX_SELECTED_IDS]
        return detail

    def _form_body(self) -> bool:
        content_type = self.request.META.get("CONTENT_TYPE", "")
        return content_type.startswith(("application/x-www-form-urlencoded", "multipart/"))


def _route_noun(url_name: str | None) -> str:
    """``incidents`` / ``report-submit`` → ``incident`` / ``report``: a label for the
    object a route without an id argument created (the view name says which route)."""
    noun = (url_name or "").split("-")[0]
    return noun[:-1] if noun.endswith("s") else noun


def channel_of(path: str) -> str | None:
    if path.startswith(ADMIN_PREFIX):
        return AuditEntry.Channel.ADMIN
    if path.startswith(API_PREFIXES):
        return AuditEntry.Channel.API
    return None


def begin(request: HttpRequest) -> contextvars.Token[RequestAudit | None]:
    return _current.set(RequestAudit(request=request, channel=channel_of(request.path)))


def current() -> RequestAudit | None:
    return _current.get()


def end(token: contextvars.Token[RequestAudit | None]) -> RequestAudit | None:
    audit = _current.get()
    _current.reset(token)
    return audit


def audit_personal_read(
    request: Any, *, object_type: str, object_ids: Iterable[Any], fields: Sequence[str]
) -> None:
    """Record that this request shows ``fields`` of the objects ``object_ids`` (a user,
    a report, an incident) to its user. Call it where the data is serialised; ids whose
    fields are empty need not be passed. ``request`` may be Django's or DRF's.

    Outside a request that the middleware watches (a shell, a test calling a view
    directly) the read is written at once.
    """
    ids = [str(object_id) for object_id in object_ids]
    if not ids:
        return
    read = PersonalRead(object_type=object_type, object_ids=ids, fields=list(fields))
    audit = current()
    if audit is not None:
        audit.reads.append(read)
        return
    http_request = getattr(request, "_request", request)
    orphan = RequestAudit(request=http_request, channel=channel_of(http_request.path))
    orphan.reads.append(read)
    write_entries(orphan.entries(_NoResponse()))


def audit_object(*, object_type: str, object_id: Any, **detail: Any) -> None:
    """Name the object the current write touched, when the URL does not say it."""
    audit = current()
    if audit is not None:
        audit.object_type, audit.object_id = object_type, str(object_id)
        audit.detail.update(detail)


def note_admin_log_entry(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    """``post_save`` of the admin's ``LogEntry``: the object an admin add, change or
    delete touched, and the admin's own summary of the change (field names only)."""
    audit = current()
    if not created or audit is None:
        return
    content_type = instance.content_type
    label = f"{content_type.app_label}.{content_type.model}" if content_type else ""
    if audit.object_id and (audit.object_type, audit.object_id) != (label, instance.object_id):
        audit.detail.setdefault("objects", []).append([label, instance.object_id])
        return
    audit.object_type, audit.object_id = label, str(instance.object_id or "")
    audit.detail["admin_change"] = instance.get_change_message()[:500]


def write_entries(entries: list[AuditEntry]) -> None:
    """One INSERT for the request's rows; never raises (the answer has been sent)."""
    if not entries:
        return
    try:
        # One statement, atomic by itself; no savepoint (the request's transactions are
        # over when this runs, and ATOMIC_REQUESTS is off).
        AuditEntry.objects.bulk_create(entries)
    except Exception:
        logger.exception(
            "audit entries lost: %s",
            [(e.action, e.method, e.path, e.actor_id, e.status) for e in entries],
        )


class _NoResponse:
    status_code = None
