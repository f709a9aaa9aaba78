"""Error codes of incidents and citizen reports (API: add, never rename)."""

from __future__ import annotations

from enum import StrEnum


class IncidentErrorCode(StrEnum):
    INCIDENT_NOT_FOUND = "incident_not_found"
    ILLEGAL_TRANSITION = "illegal_transition"  # extra: {"from": status, "to": status}
    CATEGORY_UNKNOWN = "category_unknown"
    CATEGORY_FIELD_INVALID = "category_field_invalid"
    MERGE_TARGET_INVALID = "merge_target_invalid"
    REPORT_NOT_FOUND = "report_not_found"
    REPORT_ALREADY_TRIAGED = "report_already_triaged"
    REPORT_NOT_RATEABLE = "report_not_rateable"
    REPORT_ALREADY_RATED = "report_already_rated"
    REOPEN_WINDOW_CLOSED = "reopen_window_closed"
    REOPEN_NOT_ALLOWED = "reopen_not_allowed"
    ATTACHMENT_INVALID = "attachment_invalid"
    ATTACHMENT_TOO_LARGE = "attachment_too_large"
    TOO_MANY_ATTACHMENTS = "too_many_attachments"
