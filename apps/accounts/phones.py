"""Mainland China mobile numbers → E.164 (``+8613800138000``).

The ``phonenumbers`` library is not a dependency yet, and every phone user of the new
area (citizens, responders) has a mainland mobile number, so this module accepts exactly
those: 11 digits starting ``1[3-9]``, optionally written with ``+86``/``86``/``0086``,
spaces, hyphens, dots or parentheses, in half- or full-width characters. Anything else
is refused with a message the app can show, never guessed at: an OTP sent to a wrong
number is a code handed to a stranger.
"""

from __future__ import annotations

import re
import unicodedata

from django.utils.translation import gettext_lazy as _

COUNTRY_CODE = "86"
_SEPARATORS = re.compile(r"[\s\-.()]")
_MAINLAND_MOBILE = re.compile(r"1[3-9]\d{9}")


class PhoneNumberError(ValueError):
    """The text is not a mainland China mobile number; ``message`` says why."""

    def __init__(self, message: object) -> None:
        self.message = message
        super().__init__(str(message))


def phone_normalise(raw: str) -> str:
    """Return ``raw`` as ``+86`` + 11 digits, or raise :class:`PhoneNumberError`.

    ``"13800138000"``, ``"+86 138-0013-8000"``, ``"8613800138000"`` and
    ``"0086 138 0013 8000"`` all become ``"+8613800138000"``.
    """
    if not isinstance(raw, str) or not raw.strip():
        raise PhoneNumberError(_("Enter a mobile phone number."))
    # NFKC folds full-width digits and "＋" typed on Chinese keyboards into ASCII.
    text = _SEPARATORS.sub("", unicodedata.normalize("NFKC", raw))
    if text.startswith("+"):
        if not text.startswith("+" + COUNTRY_CODE):
            raise PhoneNumberError(_("Only mainland China (+86) mobile numbers are supported."))
        digits = text[1 + len(COUNTRY_CODE) :]
    elif text.startswith("00"):
        if not text.startswith("00" + COUNTRY_CODE):
            raise PhoneNumberError(_("Only mainland China (+86) mobile numbers are supported."))
        digits = text[2 + len(COUNTRY_CODE) :]
    elif len(text) == 11 + len(COUNTRY_CODE) and text.startswith(COUNTRY_CODE):
        digits = text[len(COUNTRY_CODE) :]
    else:
        digits = text
    if not digits.isascii() or not digits.isdigit():
        raise PhoneNumberError(_("A phone number may contain only digits and separators."))
    if len(digits) != 11:
        raise PhoneNumberError(_("A mainland China mobile number has 11 digits."))
    if not _MAINLAND_MOBILE.fullmatch(digits):
        raise PhoneNumberError(_("A mainland China mobile number starts with 13 to 19."))
    return f"+{COUNTRY_CODE}{digits}"


def phone_mask(phone: str) -> str:
    """``+8613800138000`` → ``+86138****8000`` for logs and admin lists."""
    if len(phone) < 8:
        return "****"
    return f"{phone[:-8]}****{phone[-4:]}"
