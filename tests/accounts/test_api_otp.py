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
OWNER = "198.51.100.7"
STRANGER = "203.0.113.9"


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


def test_a_strangers_wrong_guesses_from_another_address_do_not_stop_the_owner(
    api_client: APIClient, request_code: Callable[..., str]
) -> None:
    """The attack this replaced: five wrong codes from anywhere used to lock the phone
    number for fifteen minutes, the owner included."""
    # given: a code the stranger knows nothing of, guessed from the stranger's address
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        code = request_code()
        stranger = [
            api_client.post(
                VERIFY_URL, {"phone": PHONE, "code": _wrong(code)}, REMOTE_ADDR=STRANGER
            )
            for _ in range(settings.OTP_MAX_ATTEMPTS + 1)
        ]
    # then: the stranger burnt that code and must now wait before guessing this phone
    assert [a.json()["code"] for a in stranger] == ["otp_invalid"] * settings.OTP_MAX_ATTEMPTS + [
        "otp_locked"
    ]
    assert stranger[-1].status_code == 429
    # when: a moment later the owner asks for a fresh code on their phone and uses it
    with time_machine.travel(start + timedelta(seconds=5), tick=False):
        fresh = request_code()
        owner = api_client.post(VERIFY_URL, {"phone": PHONE, "code": fresh}, REMOTE_ADDR=OWNER)
        stranger_again = api_client.post(
            VERIFY_URL, {"phone": PHONE, "code": _wrong(fresh)}, REMOTE_ADDR=STRANGER
        )
    # then
    assert owner.status_code == 200, owner.content
    assert User.objects.filter(phone=PHONE).exists()
    assert stranger_again.status_code == 429  # still waiting; nothing was counted
    assert OtpChallenge.objects.filter(consumed_at__isnull=False).count() == 1


def test_a_wrong_guess_says_when_the_address_may_guess_again(
    api_client: APIClient, request_code: Callable[..., str]
) -> None:
    # given
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        code = request_code()
        # when: the last free wrong guess of this address
        answers = [
            api_client.post(VERIFY_URL, {"phone": PHONE, "code": _wrong(code)})
            for _ in range(settings.OTP_ADDRESS_FREE_FAILURES)
        ]
        blocked = api_client.post(VERIFY_URL, {"phone": PHONE, "code": code})
    # then
    assert [a.json()["extra"]["retry_after"] for a in answers[:-1]] == [0] * (
        settings.OTP_ADDRESS_FREE_FAILURES - 1
    )
    assert answers[-1].json()["extra"]["retry_after"] == settings.OTP_BACKOFF_BASE_SECONDS
    assert blocked.status_code == 429
    assert blocked["Retry-After"] == str(settings.OTP_BACKOFF_BASE_SECONDS)


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
