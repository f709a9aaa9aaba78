"""Error codes of early warnings (API: add, never rename)."""

from __future__ import annotations

from enum import StrEnum


class WarningErrorCode(StrEnum):
    WARNING_NOT_FOUND = "warning_not_found"
    ILLEGAL_TRANSITION = "warning_illegal_transition"  # e.g. approve a draft, update a draft
    APPROVAL_NOT_ALLOWED = "warning_approval_not_allowed"  # the approval rule says no
    NO_APPROVAL_RULE = "warning_no_approval_rule"  # the rule table has no row for it
    CHAIN_BUSY = "warning_chain_busy"  # an update or cancel of the chain awaits approval
    ACK_NOT_FOUND = "warning_ack_not_found"  # not addressed to me
    NOT_ACTIVE = "warning_not_active"  # superseded, cancelled or expired
    PERSON_NOT_FOUND = "warning_person_not_found"
    CAP_NOT_ACTUAL = "warning_cap_not_actual"  # import: an Exercise/Test/System/Draft message
    CAP_UNSUPPORTED = "warning_cap_unsupported"  # import: msgType Ack or Error
    CAP_NO_AREA = "warning_cap_no_area"  # import: no region at all to target
