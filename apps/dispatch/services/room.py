"""The incident room (会商): messages with text and/or a photo (conventions R1, R2).

Who may post is :func:`apps.dispatch.policies.room_can_access` (``room`` in scope:
operators, commanders, admins, liaisons; members of teams live on the incident; the open
command post); refused → 403 ``not_on_incident``. A photo goes through the same sanitising
pipeline as citizens' photos and is attached to the incident, so it is also evidence in
the incident's photo list.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils.translation import gettext_lazy as _

from apps.core.errors import ApplicationError, ErrorCode
from apps.core.transactions import on_commit
from apps.dispatch import locks
from apps.dispatch.errors import DispatchErrorCode
from apps.dispatch.models import RoomMessage
from apps.dispatch.policies import room_can_access
from apps.dispatch.realtime import room_message_posted
from apps.incidents.models import Incident
from apps.incidents.services.attachments import (
    attachments_create,
    photo_files_delete,
    photo_files_write,
    photo_process,
)

logger = logging.getLogger(__name__)

ROOM_TEXT_MAX_LENGTH = 2000


def room_post(*, incident_id: int, by: Any, text: str = "", photo: Any = None) -> RoomMessage:
    """Post a message; at least text or a photo (400 ``invalid``)."""
    text = (text or "").strip()
    if not text and photo is None:
        raise _invalid("text", _("Write something or attach a photo."), code="blank")
    if len(text) > ROOM_TEXT_MAX_LENGTH:
        raise _invalid(
            "text",
            _("At most %(limit)s characters.") % {"limit": ROOM_TEXT_MAX_LENGTH},
            code="max_length",
        )
    _require_participant(incident_id, by)  # before decoding a photo
    stored = photo_files_write([photo_process(photo)]) if photo is not None else []
    try:
        with transaction.atomic():
            # A share lock would do; the incident row lock keeps one order with the tasks
            # and makes "still a participant?" and the insert one step.
            incident = locks.incident_for_update(incident_id)
            _require_participant(incident_id, by, incident=incident)
            attachment = None
            if stored:
                (attachment,) = attachments_create(stored=stored, incident=incident, uploaded_by=by)
            message = RoomMessage.objects.create(
                incident=incident, author=by, text=text, attachment=attachment
            )
            room_message_posted(message)  # the incident stream, published after commit
            message_id = message.pk
            on_commit(lambda: _after_commit_room_message(message_id))
    except BaseException:
        photo_files_delete(stored)
        raise
    return message


def _require_participant(incident_id: int, by: Any, *, incident: Incident | None = None) -> None:
    incident = incident or Incident.objects.select_related("region").filter(pk=incident_id).first()
    if incident is None:
        raise ApplicationError(ErrorCode.NOT_FOUND, status=404)
    if not room_can_access(by, incident):
        raise ApplicationError(
            DispatchErrorCode.NOT_ON_INCIDENT,
            _("Only people working on this incident may post in its room."),
            status=403,
        )


def _after_commit_room_message(message_id: int) -> None:
    """After commit (the realtime event was written with the message); logs."""
    logger.info("room message posted: id=%s", message_id)


def _invalid(field: str, message: Any, *, code: str = "invalid") -> ApplicationError:
    return ApplicationError(
        ErrorCode.INVALID,
        extra={"fields": {field: [{"code": code, "message": str(message)}]}},
    )
