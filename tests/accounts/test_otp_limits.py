"""One-time-code guessing limits (apps.accounts.otp): backoff per (phone, address) and
per phone instead of a lock on the number, and the bound on guessing that follows."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from apps.accounts import otp
from apps.accounts.models import OtpChallenge, OtpFailureCounter
from apps.accounts.services import otp_request, otp_verify
from apps.accounts.tasks import otp_failure_counters_purge
from apps.core.errors import ApplicationError

pytestmark = pytest.mark.django_db

PHONE = "+8613800138000"
STRANGER = "203.0.113.9"
OWNER = "198.51.100.7"


def _code(sms_outbox: list) -> str:
    return re.search(r"\b(\d{6})\b", sms_outbox[-1].text).group(1)


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def _verify(code: str, address: str) -> ApplicationError | None:
    try:
        otp_verify(phone=PHONE, code=code, address=address)
    except ApplicationError as exc:
        return exc
    return None


def _new_code(sms_outbox: list, address: str, django_capture_on_commit_callbacks: Any) -> str:
    with django_capture_on_commit_callbacks(execute=True):
        otp_request(phone=PHONE, ip=address)
    return _code(sms_outbox)


def test_the_wait_of_one_address_doubles_with_each_wrong_code_up_to_the_cap(
    settings: Any, sms_outbox: list, django_capture_on_commit_callbacks: Any
) -> None:
    # given: small numbers, so the cap is reached in a few steps
    settings.OTP_ADDRESS_FREE_FAILURES = 2
    settings.OTP_BACKOFF_BASE_SECONDS = 10
    settings.OTP_BACKOFF_MAX_SECONDS = 45
    settings.OTP_MAX_ATTEMPTS = 100
    now = timezone.now()
    waits = []
    with time_machine.travel(now, tick=False) as clock:
        code = _new_code(sms_outbox, STRANGER, django_capture_on_commit_callbacks)
        # when: the stranger guesses wrong as soon as allowed, six times
        for _ in range(6):
            error = _verify(_wrong(code), STRANGER)
            assert error is not None
            assert error.code == "otp_invalid"
            waits.append(error.extra["retry_after"])
            if waits[-1]:
                early = _verify(code, STRANGER)  # even the right code is not checked early
                assert early is not None
                assert early.code == "otp_locked"
                assert early.extra["retry_after"] == waits[-1]
                clock.shift(timedelta(seconds=waits[-1]))
    # then
    assert waits == [0, 10, 20, 40, 45, 45]
    assert [otp.backoff_seconds(n, 2) for n in range(1, 7)] == waits


def test_guessing_one_phone_from_ever_new_addresses_stays_within_the_bound(
    settings: Any, sms_outbox: list, django_capture_on_commit_callbacks: Any
) -> None:
    """A botnet: every guess from a new address, a new code whenever the last is burnt.
    The per-phone counter bounds it: guess_bound(T) wrong guesses in T seconds, so the
    chance of a hit is at most guess_bound(T) / 10**6."""
    # given
    settings.OTP_MAX_ATTEMPTS = 3
    settings.OTP_ADDRESS_FREE_FAILURES = 2
    settings.OTP_PHONE_FREE_FAILURES = 6
    settings.OTP_BACKOFF_BASE_SECONDS = 5
    settings.OTP_BACKOFF_MAX_SECONDS = 40
    settings.OTP_RESEND_SECONDS = 0
    period = 300
    start = timezone.now()
    counted = 0
    with time_machine.travel(start, tick=False) as clock:
        code = _new_code(sms_outbox, "192.0.2.1", django_capture_on_commit_callbacks)
        # when: one guess a second for five minutes, each from a fresh address
        for second in range(period + 1):
            address = f"10.{second // 250}.{second % 250}.1"
            error = _verify(_wrong(code), address)
            assert error is not None
            if error.code in ("otp_not_pending", "otp_expired"):
                code = _new_code(sms_outbox, address, django_capture_on_commit_callbacks)
                error = _verify(_wrong(code), address)
                assert error is not None
            assert error.code in ("otp_invalid", "otp_locked")
            counted += error.code == "otp_invalid"
            clock.shift(timedelta(seconds=1))
    # then: exactly as many wrong guesses were checked as the bound allows, and no code
    # took more than its share
    # 6 free, then waits of 5, 10, 20 and 40 s (the cap) from then on: 15 in 300 s
    assert counted == otp.guess_bound(period) == 15
    assert max(OtpChallenge.objects.values_list("attempts", flat=True)) <= 3
    assert counted / 10**6 < 2e-5  # the chance of a hit in those five minutes


def test_the_default_limits_keep_a_day_of_guessing_below_one_in_ten_thousand() -> None:
    # 79 guesses a day against one number, whatever the number of addresses
    assert otp.guess_bound(86_400) == 79
    assert otp.guess_bound(86_400) / 10**6 < 1e-4
    # and from a single address, 34
    assert otp.guess_bound(86_400, free=5) == 34


def test_the_owner_is_slowed_not_locked_out_when_many_addresses_attack(
    settings: Any, sms_outbox: list, django_capture_on_commit_callbacks: Any
) -> None:
    # given: enough addresses to use up the phone's free guesses
    settings.OTP_PHONE_FREE_FAILURES = 10
    settings.OTP_RESEND_SECONDS = 0
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        for bot in range(5):
            code = _new_code(sms_outbox, f"10.0.0.{bot}", django_capture_on_commit_callbacks)
            for _ in range(2):
                _verify(_wrong(code), f"10.0.{bot}.9")
        # when: the owner asks for a code
        fresh = _new_code(sms_outbox, OWNER, django_capture_on_commit_callbacks)
        refused = _verify(fresh, OWNER)
        # then: the owner waits the first step of the backoff, not a fixed lock
        assert refused is not None
        assert refused.code == "otp_locked"
        assert refused.extra["retry_after"] == settings.OTP_BACKOFF_BASE_SECONDS
        clock.shift(timedelta(seconds=settings.OTP_BACKOFF_BASE_SECONDS))
        assert _verify(fresh, OWNER) is None
    # and the login cleared the phone's counter
    assert not OtpFailureCounter.objects.filter(
        phone=PHONE, address=OtpFailureCounter.EVERY_ADDRESS
    ).exists()


def test_a_login_clears_the_counter_of_its_address_but_not_the_strangers(
    sms_outbox: list, django_capture_on_commit_callbacks: Any
) -> None:
    # given
    code = _new_code(sms_outbox, OWNER, django_capture_on_commit_callbacks)
    _verify(_wrong(code), OWNER)
    _verify(_wrong(code), STRANGER)
    # when
    assert _verify(code, OWNER) is None
    # then
    assert set(OtpFailureCounter.objects.values_list("address", "failures")) == {(STRANGER, 1)}


def test_a_burnt_code_may_be_replaced_at_once(
    settings: Any, sms_outbox: list, django_capture_on_commit_callbacks: Any
) -> None:
    # given: a code burnt by a stranger a second after it was sent
    code = _new_code(sms_outbox, OWNER, django_capture_on_commit_callbacks)
    for _ in range(settings.OTP_MAX_ATTEMPTS):
        _verify(_wrong(code), STRANGER)
    # when: the owner asks again within the resend interval
    fresh = _new_code(sms_outbox, OWNER, django_capture_on_commit_callbacks)
    # then
    assert _verify(fresh, OWNER) is None
    assert OtpChallenge.objects.count() == 2


def test_the_addresses_of_one_ipv6_64_share_a_counter() -> None:
    assert otp.address_key("2001:db8:1:2::1") == otp.address_key("2001:db8:1:2:ffff::9")
    assert otp.address_key("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert otp.address_key("2001:db8:1:3::1") != otp.address_key("2001:db8:1:2::1")
    assert otp.address_key("::ffff:203.0.113.9") == "203.0.113.9"
    assert otp.address_key("") == "unknown"


def test_forgotten_counters_are_purged(settings: Any) -> None:
    # given
    now = timezone.now()
    old = now - timedelta(seconds=settings.OTP_FAILURE_WINDOW_SECONDS + 1)
    OtpFailureCounter.objects.create(phone=PHONE, address=STRANGER, failures=3, last_failure_at=old)
    OtpFailureCounter.objects.create(phone=PHONE, address=OWNER, failures=1, last_failure_at=now)
    # when
    deleted = otp_failure_counters_purge()
    # then
    assert deleted == 1
    assert list(OtpFailureCounter.objects.values_list("address", flat=True)) == [OWNER]
