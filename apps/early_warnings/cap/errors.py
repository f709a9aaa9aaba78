"""Refusals of the CAP package: machine codes (API: add, never rename) and their errors.

Every refusal is an :class:`~apps.core.errors.ApplicationError` whose ``extra["problems"]``
lists each problem found as ``{"line", "path", "reason"}`` (``line`` is ``None`` where the
problem has no place in a document, e.g. a field of a dataclass we were asked to write).
The reasons come from the XML parser and the XSD validator and stay in English: they
name XML elements, which have no translation.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import TypedDict

from django.utils.translation import gettext_lazy as _

from apps.core.errors import ApplicationError


class CapErrorCode(StrEnum):
    CAP_INVALID = "cap_invalid"  # not XML, unsafe XML, or not a valid CAP 1.2 alert
    CAP_TOO_LARGE = "cap_too_large"  # longer than the size limit; not parsed at all
    CAP_UNREPRESENTABLE = "cap_unrepresentable"  # our warning cannot be written as valid CAP


class Problem(TypedDict):
    line: int | None
    path: str
    reason: str


def cap_invalid(problems: Sequence[Problem]) -> ApplicationError:
    return ApplicationError(
        CapErrorCode.CAP_INVALID,
        _("The message is not a valid CAP 1.2 alert."),
        extra={"problems": list(problems)},
        status=422,
    )


def cap_too_large(size: int, limit: int) -> ApplicationError:
    return ApplicationError(
        CapErrorCode.CAP_TOO_LARGE,
        _("The CAP message is too large."),
        extra={
            "problems": [Problem(line=None, path="/", reason=f"{size} bytes, limit {limit} bytes")],
            "limit": limit,
        },
        status=413,
    )


def cap_unrepresentable(problems: Sequence[Problem]) -> ApplicationError:
    return ApplicationError(
        CapErrorCode.CAP_UNREPRESENTABLE,
        _("This warning cannot be written as a valid CAP 1.2 message."),
        extra={"problems": list(problems)},
        status=422,
    )
