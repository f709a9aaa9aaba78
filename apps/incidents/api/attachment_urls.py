"""The one way an API answer names a photo: the checked download, never a media URL.

Every serializer that shows an attachment (reports, incidents, the incident room) links
it through :func:`attachment_url`: ``attachments/{id}/`` (or ``.../thumbnail/``), where
``apps.incidents.policies.attachment_visible`` decides per request. ``MEDIA_URL`` is not
served at all (``docs/roles.md``, "Media"). A reader who proved a report's tracking token
(an anonymous reporter) gets *signed* links instead: one photo each, valid for
``ATTACHMENTS_SIGNED_URL_SECONDS``, without the token in them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.urls import reverse

from apps.incidents.policies import attachment_signature


def attachment_url(
    attachment: Any, *, request: Any = None, thumbnail: bool = False, signed: bool = False
) -> str:
    """The checked URL of ``attachment`` (an ``Attachment`` or its id); ``signed``: the
    short-lived link form for a tracking-token reader; absolute with ``request``."""
    pk = attachment if isinstance(attachment, int) else attachment.pk
    name = "v1:attachment-thumbnail" if thumbnail else "v1:attachment-download"
    path = reverse(name, kwargs={"attachment_id": pk})
    if signed:
        path = f"{path}?{urlencode({'sig': attachment_signature(pk)})}"
    return request.build_absolute_uri(path) if request is not None else path
