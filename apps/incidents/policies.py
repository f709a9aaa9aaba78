"""Reporters' personal data: who sees a reporter's phone, name and photos. One rule.

A citizen who reports gives their phone number so that *the people handling the report*
can call back, and their photos may show their home. So the reporter's contact
(``Incident.reporter_name``/``reporter_phone``, ``Report.phone``) and the citizen photos
are shown, by every serializer, payload and download that carries them, only to:

1. staff whose roles give ``reporter.contact`` over the object's region (operators,
   commanders, admins, department liaisons: ``apps.accounts.permissions``);
2. the incident's *assignment*: members of a team with a live or completed task on it,
   and the people of its open command post — registered here by dispatch
   (``register_assignment_check``: incidents cannot import it, layers);
3. for a report's photos, also its reporter (logged in) or whoever holds its tracking
   token, and the bearer of a *signed photo link*: the tracking answer (whose reader
   proved the token) links each photo with a signature of that one photo that expires
   after ``ATTACHMENTS_SIGNED_URL_SECONDS`` (15 minutes), so a link that leaks (a log, a
   forwarded screenshot) neither lasts nor carries the tracking token.

Everyone else who may read the incident — a responder of another team, a grid worker —
sees the scene without the person: contact fields are ``null`` and photo lists empty.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core import signing

from apps.accounts.permissions import Capability, can
from apps.incidents.models import Attachment, Incident, Report

AssignmentCheck = Callable[[Any, int], bool]

SIGNED_URL_SALT = "xems.incidents.attachment-link"
SIGNED_URL_SECONDS_DEFAULT = 15 * 60

_assignment_checks: list[AssignmentCheck] = []


def register_assignment_check(check: AssignmentCheck) -> AssignmentCheck:
    """``check(user, incident_id)`` → is the user on the incident's assignment? Idempotent."""
    if check not in _assignment_checks:
        _assignment_checks.append(check)
    return check


def _authenticated(user: Any) -> bool:
    return user is not None and getattr(user, "is_authenticated", False)


def contact_visible(user: Any, *, region_path: str, incident_id: int | None) -> bool:
    """May ``user`` see the contact and photos of the reporter of an object at
    ``region_path`` (of incident ``incident_id``, if it has one)?"""
    if not _authenticated(user):
        return False
    if can(user, Capability.REPORTER_CONTACT, region_path):
        return True
    if incident_id is None:
        return False
    return any(check(user, incident_id) for check in list(_assignment_checks))


def incident_contact_visible(user: Any, incident: Incident) -> bool:
    return contact_visible(user, region_path=incident.region.path, incident_id=incident.pk)


def report_contact_visible(user: Any, report: Report) -> bool:
    return contact_visible(user, region_path=report.region.path, incident_id=report.incident_id)


def attachment_signature(attachment_id: int) -> str:
    """A signed, timestamped link capability for one photo (``?sig=``)."""
    return signing.TimestampSigner(salt=SIGNED_URL_SALT).sign(str(int(attachment_id)))


def attachment_signature_valid(attachment_id: int, signature: str) -> bool:
    """Is ``signature`` one of :func:`attachment_signature` for this photo, still fresh?"""
    if not signature or len(signature) > 200:
        return False
    max_age = int(getattr(settings, "ATTACHMENTS_SIGNED_URL_SECONDS", SIGNED_URL_SECONDS_DEFAULT))
    try:
        value = signing.TimestampSigner(salt=SIGNED_URL_SALT).unsign(signature, max_age=max_age)
    except signing.BadSignature:  # also SignatureExpired
        return False
    return value == str(int(attachment_id))


def attachment_visible(
    user: Any, attachment: Attachment, *, token: str = "", signature: str = ""
) -> bool:
    """May the requester fetch ``attachment`` (with ``report``, ``report__region``,
    ``incident__region`` loaded)? The reporter, the token holder and the bearer of a
    fresh signed link see their report's photos; everyone else by
    :func:`contact_visible`."""
    from apps.incidents.selectors.reports import same_token  # selectors import policies

    report = attachment.report
    if report is not None and attachment_signature_valid(attachment.pk, signature):
        return True
    if report is not None:
        if _authenticated(user) and report.reporter_id == user.pk:
            return True
        if token and same_token(report.token, token):
            return True
        return contact_visible(user, region_path=report.region.path, incident_id=report.incident_id)
    incident = attachment.incident
    if incident is None:  # pragma: no cover - a check constraint forbids it
        return False
    return contact_visible(user, region_path=incident.region.path, incident_id=incident.pk)
