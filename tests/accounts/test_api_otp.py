from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import OtpChallenge, User
from tests.factories.accounts import CitizenFactory

pytestmark = pytest.mark.django_db

REQUEST_URL = "/api/v1/auth/otp/request/"
VERIFY_URL = "/api/v1/auth/otp/verify/"
PHONE = "+8613800138000"


@pytest.fixture
def request_code(
    api_client: APIClient, sms_outbox: list, django_capture_on_commit_callbacks: Any
) -> Callable[..., str]:
    """Request a code for ``phone`` and return it, read from the SMS outbox."""

    def request(phone: str = PHONE) -> str:
        with django_capture_on_commit_callbacks(execute=True):
            response = api_client.post(REQUEST_URL, {"phone": phone})
        assert response.status_code == 202, response.content
        return re.search(r"\b(\d{6})\b", sms_outbox[-1].text).group(1)

    return request


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def _rates(settings: Any, **rates: str) -> None:
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], **rates},
    }


def test_requesting_a_code_texts_it_only_after_the_challenge_commits(
    api_client: APIClient, sms_outbox: list, django_capture_on_commit_callbacks: Any
) -> None:
    # when
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = api_client.post(REQUEST_URL, {"phone": "138 0013 8000"})
        # then: nothing is sent while the transaction is open
        assert sms_outbox == []
    assert response.status_code == 202
    assert response.json() == {
        "expires_in": settings.OTP_TTL_SECONDS,
        "resend_after": settings.OTP_RESEND_SECONDS,
    }
    for callback in callbacks:
        callback()
    assert len(sms_outbox) == 1
    assert sms_outbox[0].phone == PHONE
    code = re.search(r"\b(\d{6})\b", sms_outbox[0].text).group(1)
    challenge = OtpChallenge.objects.get(phone=PHONE)
    assert code not in challenge.code_hash  # only a keyed hash is stored
    assert len(challenge.code_hash) == 64
    assert challenge.requested_ip == "127.0.0.1"


def test_a_malformed_phone_number_is_refused_with_a_field_error(
    api_client: APIClient, sms_outbox: list
) -> None:
    response = api_client.post(REQUEST_URL, {"phone": "12345"})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert body["extra"]["fields"]["phone"][0]["code"] == "phone_invalid"
    assert sms_outbox == []


def test_a_resend_within_the_cooldown_is_refused_with_retry_after(
    api_client: APIClient, request_code: Callable[..., str]
) -> None:
    # given
    request_code()
    # when
    response = api_client.post(REQUEST_URL, {"phone": PHONE})
    # then
    assert response.status_code == 429
    body = response.json()
    assert body["code"] == "otp_resend_too_soon"
    assert 0 < body["extra"]["retry_after"] <= settings.OTP_RESEND_SECONDS
    assert response["Retry-After"] == str(body["extra"]["retry_after"])
    assert OtpChallenge.objects.count() == 1


def test_a_resend_after_the_cooldown_supersedes_the_old_code(
    api_client: APIClient, request_code: Callable[..., str]
) -> None:
    # given
    old = request_code()
    with time_machine.travel(timezone.now() + timedelta(seconds=settings.OTP_RESEND_SECONDS + 1)):
        new = request_code()
        # when
        stale = api_client.post(VERIFY_URL, {"phone": PHONE, "code": old})
        fresh = api_client.post(VERIFY_URL, {"phone": PHONE, "code": new})
    # then
    if old != new:
        assert stale.status_code == 400
    assert fresh.status_code == 200


def test_one_phone_is_rate_limited_whatever_way_it_is_written(
    api_client: APIClient, settings: Any, request_code: Callable[..., str]
) -> None:
    # given
    _rates(settings, otp_request_phone="2/hour")
    start = timezone.now()
    with time_machine.travel(start):
        request_code("13800138000")
    with time_machine.travel(start + timedelta(minutes=2)):
        request_code("+86 138-0013-8000")
    # when
    with time_machine.travel(start + timedelta(minutes=4)):
        response = api_client.post(REQUEST_URL, {"phone": "8613800138000"})
    # then
    assert response.status_code == 429
    assert response.json()["code"] == "rate_limited"
    assert response.json()["extra"]["retry_after"] > 0
    assert int(response["Retry-After"]) > 0
    assert OtpChallenge.objects.count() == 2


def test_one_address_is_rate_limited_across_phones(
    api_client: APIClient, settings: Any, request_code: Callable[..., str]
) -> None:
    # given
    _rates(settings, otp_request_ip="2/hour")
    request_code("13800000101")
    request_code("13800000102")
    # when
    response = api_client.post(REQUEST_URL, {"phone": "13800000103"})
    # then
    assert response.status_code == 429
    assert response.json()["code"] == "rate_limited"
    assert "Retry-After" in response


def test_the_first_login_creates_a_citizen_without_a_password(
    api_client: APIClient, request_code: Callable[..., str]
) -> None:
    # given
    code = request_code()
    # when
    response = api_client.post(VERIFY_URL, {"phone": PHONE, "code": code})
    # then
    assert response.status_code == 200
    body = response.json()
    assert body["created"] is True
    assert set(body) == {"access", "refresh", "user", "created"}
    user = User.objects.get(phone=PHONE)
    assert body["user"] == {
        "id": user.pk,
        "username": user.username,
        "phone": PHONE,
        "display_name": "",
    }
    assert not user.has_usable_password()
    assert user.phone_verified_at is not None
    assert not user.is_staff
    me = APIClient()
    me.credentials(HTTP_AUTHORIZATION=f"Bearer {body['access']}")
    assert me.get("/api/v1/me/").json()["roles"] == ["citizen"]


def test_a_known_phone_logs_into_its_existing_account(
    api_client: APIClient, request_code: Callable[..., str]
) -> None:
    citizen = CitizenFactory(phone=PHONE)
    response = api_client.post(VERIFY_URL, {"phone": PHONE, "code": request_code()})
    assert response.status_code == 200
    assert response.json()["created"] is False
    assert response.json()["user"]["id"] == citizen.pk
    assert User.objects.filter(phone=PHONE).count() == 1


def test_a_used_code_cannot_be_used_again(
    api_client: APIClient, request_code: Callable[..., str]
) -> None:
    code = request_code()
    assert api_client.post(VERIFY_URL, {"phone": PHONE, "code": code}).status_code == 200
    again = api_client.post(VERIFY_URL, {"phone": PHONE, "code": code})
    assert again.status_code == 400
    assert again.json()["code"] == "otp_not_pending"


def test_a_code_never_requested_is_not_pending(api_client: APIClient) -> None:
    response = api_client.post(VERIFY_URL, {"phone": PHONE, "code": "123456"})
    assert response.status_code == 400
    assert response.json()["code"] == "otp_not_pending"


def test_an_expired_code_is_refused(
    api_client: APIClient, request_code: Callable[..., str]
) -> None:
    code = request_code()
    with time_machine.travel(timezone.now() + timedelta(seconds=settings.OTP_TTL_SECONDS + 1)):
        response = api_client.post(VERIFY_URL, {"phone": PHONE, "code": code})
    assert response.status_code == 400
    assert response.json()["code"] == "otp_expired"


def test_a_wrong_code_says_how_many_attempts_are_left(
    api_client: APIClient, request_code: Callable[..., str]
) -> None:
    code = request_code()
    response = api_client.post(VERIFY_URL, {"phone": PHONE, "code": _wrong(code)})
    assert response.status_code == 400
    assert response.json()["code"] == "otp_invalid"
    assert response.json()["extra"]["attempts_left"] == settings.OTP_MAX_ATTEMPTS - 1
    assert OtpChallenge.objects.get().attempts == 1


def test_brute_force_locks_the_phone_even_against_the_right_code_until_the_lock_ends(
    api_client: APIClient, request_code: Callable[..., str]
) -> None:
    # given
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        code = request_code()
        # when: OTP_MAX_ATTEMPTS wrong guesses
        answers = [
            api_client.post(VERIFY_URL, {"phone": PHONE, "code": _wrong(code)})
            for _ in range(settings.OTP_MAX_ATTEMPTS)
        ]
        right = api_client.post(VERIFY_URL, {"phone": PHONE, "code": code})
        new_code = api_client.post(REQUEST_URL, {"phone": PHONE})
    # then
    assert [a.status_code for a in answers[:-1]] == [400] * (settings.OTP_MAX_ATTEMPTS - 1)
    assert answers[-1].status_code == 429
    assert answers[-1].json()["code"] == "otp_locked"
    assert right.status_code == 429
    assert right.json()["code"] == "otp_locked"
    assert right.json()["extra"]["retry_after"] == settings.OTP_LOCK_SECONDS
    assert right["Retry-After"] == str(settings.OTP_LOCK_SECONDS)
    assert new_code.status_code == 429  # a fresh code must not reset the lock
    assert new_code.json()["code"] == "otp_locked"
    assert OtpChallenge.objects.get().attempts == settings.OTP_MAX_ATTEMPTS
    assert not User.objects.filter(phone=PHONE).exists()

    # and when the lock has run out, a new code works
    with time_machine.travel(start + timedelta(seconds=settings.OTP_LOCK_SECONDS + 1)):
        burnt = api_client.post(VERIFY_URL, {"phone": PHONE, "code": code})
        fresh = request_code()
        login = api_client.post(VERIFY_URL, {"phone": PHONE, "code": fresh})
    assert burnt.status_code == 400
    assert login.status_code == 200


def test_a_disabled_account_cannot_log_in_by_phone(
    api_client: APIClient, request_code: Callable[..., str]
) -> None:
    CitizenFactory(phone=PHONE, is_active=False)
    response = api_client.post(VERIFY_URL, {"phone": PHONE, "code": request_code()})
    assert response.status_code == 403
    assert response.json()["code"] == "account_inactive"
    assert OtpChallenge.objects.get().consumed_at is None


def test_a_code_of_the_wrong_shape_is_a_field_error(api_client: APIClient) -> None:
    response = api_client.post(VERIFY_URL, {"phone": PHONE, "code": "12ab"})
    assert response.status_code == 400
    assert "code" in response.json()["extra"]["fields"]
