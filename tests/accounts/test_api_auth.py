from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import jwt
import pytest
import time_machine
from django.conf import settings
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from apps.accounts.models import User
from tests.factories.accounts import DEFAULT_PASSWORD, CitizenFactory, UserFactory

pytestmark = pytest.mark.django_db

TOKEN_URL = "/api/v1/auth/token/"
REFRESH_URL = "/api/v1/auth/token/refresh/"
LOGOUT_URL = "/api/v1/auth/logout/"
ME_URL = "/api/v1/me/"


def _login(client: APIClient, user: User) -> dict[str, str]:
    response = client.post(TOKEN_URL, {"username": user.username, "password": DEFAULT_PASSWORD})
    assert response.status_code == 200, response.content
    return response.json()


def _bearer(access: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


def test_staff_login_returns_a_token_pair_that_opens_the_api(api_client: APIClient) -> None:
    # given
    user = UserFactory()
    # when
    tokens = _login(api_client, user)
    # then
    assert set(tokens) == {"access", "refresh"}
    assert _bearer(tokens["access"]).get(ME_URL).json()["username"] == user.username
    assert OutstandingToken.objects.filter(user=user).count() == 1


def test_wrong_password_is_authentication_failed(api_client: APIClient) -> None:
    user = UserFactory()
    response = api_client.post(TOKEN_URL, {"username": user.username, "password": "nope"})
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


def test_a_phone_user_has_no_password_to_log_in_with(api_client: APIClient) -> None:
    citizen = CitizenFactory()
    response = api_client.post(TOKEN_URL, {"username": citizen.username, "password": ""})
    assert response.status_code == 400  # blank password: a field error, not a guess
    response = api_client.post(TOKEN_URL, {"username": citizen.username, "password": "!"})
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


def test_an_inactive_staff_user_cannot_log_in(api_client: APIClient) -> None:
    user = UserFactory(is_active=False)
    response = api_client.post(TOKEN_URL, {"username": user.username, "password": DEFAULT_PASSWORD})
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


def test_password_guessing_is_rate_limited(api_client: APIClient, settings: object) -> None:
    # given
    settings.REST_FRAMEWORK = {  # type: ignore[attr-defined]
        **settings.REST_FRAMEWORK,  # type: ignore[attr-defined]
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],  # type: ignore[attr-defined]
            "login": "3/hour",
        },
    }
    user = UserFactory()
    for _ in range(3):
        api_client.post(TOKEN_URL, {"username": user.username, "password": "nope"})
    # when
    response = api_client.post(TOKEN_URL, {"username": user.username, "password": "nope"})
    # then
    assert response.status_code == 429
    body = response.json()
    assert body["code"] == "rate_limited"
    assert body["extra"]["retry_after"] > 0
    assert int(response["Retry-After"]) > 0


def test_an_expired_access_token_is_token_invalid(api_client: APIClient) -> None:
    # given
    tokens = _login(api_client, UserFactory())
    lifetime = settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"]
    # when
    with time_machine.travel(timezone.now() + lifetime + timedelta(seconds=5)):
        response = _bearer(tokens["access"]).get(ME_URL)
    # then
    assert response.status_code == 401
    assert response.json()["code"] == "token_invalid"


def test_a_token_signed_with_another_key_is_token_invalid(api_client: APIClient) -> None:
    # given
    tokens = _login(api_client, UserFactory())
    claims = jwt.decode(tokens["access"], options={"verify_signature": False})
    forged = jwt.encode(claims, "not-our-signing-key-0123456789abcdef", algorithm="HS256")
    # when
    response = _bearer(forged).get(ME_URL)
    # then
    assert response.status_code == 401
    assert response.json()["code"] == "token_invalid"


def test_a_tampered_payload_is_token_invalid(api_client: APIClient) -> None:
    # given: someone swaps in another user's id but keeps the original signature
    victim = UserFactory()
    tokens = _login(api_client, UserFactory())
    header, _payload, signature = tokens["access"].split(".")
    claims = jwt.decode(tokens["access"], options={"verify_signature": False})
    claims["user_id"] = str(victim.pk)
    other_payload = jwt.encode(claims, "x" * 32, algorithm="HS256").split(".")[1]
    # when
    response = _bearer(f"{header}.{other_payload}.{signature}").get(ME_URL)
    # then
    assert response.status_code == 401
    assert response.json()["code"] == "token_invalid"


def test_a_refresh_token_is_not_accepted_as_an_access_token(api_client: APIClient) -> None:
    tokens = _login(api_client, UserFactory())
    response = _bearer(tokens["refresh"]).get(ME_URL)
    assert response.status_code == 401
    assert response.json()["code"] == "token_invalid"


def test_refreshing_rotates_and_the_old_refresh_cannot_be_reused(api_client: APIClient) -> None:
    # given
    tokens = _login(api_client, UserFactory())
    # when
    rotated = api_client.post(REFRESH_URL, {"refresh": tokens["refresh"]})
    reused = api_client.post(REFRESH_URL, {"refresh": tokens["refresh"]})
    # then
    assert rotated.status_code == 200
    new = rotated.json()
    assert new["refresh"] != tokens["refresh"]
    assert _bearer(new["access"]).get(ME_URL).status_code == 200
    assert reused.status_code == 401
    assert reused.json()["code"] == "token_invalid"
    assert api_client.post(REFRESH_URL, {"refresh": new["refresh"]}).status_code == 200


def test_a_garbage_refresh_token_is_token_invalid(api_client: APIClient) -> None:
    response = api_client.post(REFRESH_URL, {"refresh": "not.a.jwt"})
    assert response.status_code == 401
    assert response.json()["code"] == "token_invalid"


def test_an_expired_refresh_token_is_token_invalid(api_client: APIClient) -> None:
    tokens = _login(api_client, UserFactory())
    lifetime = settings.SIMPLE_JWT["REFRESH_TOKEN_LIFETIME"]
    with time_machine.travel(timezone.now() + lifetime + timedelta(minutes=1)):
        response = api_client.post(REFRESH_URL, {"refresh": tokens["refresh"]})
    assert response.status_code == 401
    assert response.json()["code"] == "token_invalid"


def test_a_disabled_user_cannot_refresh(api_client: APIClient) -> None:
    user = UserFactory()
    tokens = _login(api_client, user)
    User.objects.filter(pk=user.pk).update(is_active=False)
    response = api_client.post(REFRESH_URL, {"refresh": tokens["refresh"]})
    assert response.status_code == 403
    assert response.json()["code"] == "account_inactive"


def test_logout_revokes_the_refresh_token(api_client: APIClient) -> None:
    # given
    tokens = _login(api_client, UserFactory())
    client = _bearer(tokens["access"])
    # when
    response = client.post(LOGOUT_URL, {"refresh": tokens["refresh"]})
    # then
    assert response.status_code == 204
    assert BlacklistedToken.objects.filter(token__token=tokens["refresh"]).exists()
    assert api_client.post(REFRESH_URL, {"refresh": tokens["refresh"]}).status_code == 401
    # and a retried logout is harmless
    assert client.post(LOGOUT_URL, {"refresh": tokens["refresh"]}).status_code == 204


def test_logout_everywhere_revokes_every_refresh_token(api_client: APIClient) -> None:
    # given: the same person on a phone and a tablet
    user = UserFactory()
    phone, tablet = _login(api_client, user), _login(api_client, user)
    # when
    response = _bearer(phone["access"]).post(LOGOUT_URL, {"all": True})
    # then
    assert response.status_code == 204
    for tokens in (phone, tablet):
        assert api_client.post(REFRESH_URL, {"refresh": tokens["refresh"]}).status_code == 401
    assert BlacklistedToken.objects.filter(token__user=user).count() == 2


def test_logout_with_someone_elses_refresh_token_is_refused(api_client: APIClient) -> None:
    mine, theirs = _login(api_client, UserFactory()), _login(api_client, UserFactory())
    response = _bearer(mine["access"]).post(LOGOUT_URL, {"refresh": theirs["refresh"]})
    assert response.status_code == 403
    assert not BlacklistedToken.objects.exists()


def test_logout_needs_a_token_or_all(authed: Callable[[User], APIClient]) -> None:
    response = authed(UserFactory()).post(LOGOUT_URL, {})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


def test_logout_requires_authentication(api_client: APIClient) -> None:
    response = api_client.post(LOGOUT_URL, {"all": True})
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_a_malformed_json_body_is_a_parse_error(api_client: APIClient) -> None:
    response = api_client.post(TOKEN_URL, data='{"username": ', content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
