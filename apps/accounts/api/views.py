"""Accounts API: staff and phone login, token rotation and revocation, me, devices.

Views parse input, call one service or selector and serialise the result (conventions R7).
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.views import TokenObtainPairView

from apps.accounts import selectors, services
from apps.accounts.api import serializers as s
from apps.accounts.api.throttles import (
    LoginIpThrottle,
    OtpRequestIpThrottle,
    OtpRequestPhoneThrottle,
    OtpVerifyIpThrottle,
)
from apps.accounts.errors import AccountsErrorCode, accounts_error
from apps.accounts.lockout import lockout_seconds
from apps.accounts.models import Device
from apps.core.api.schema import error_response
from apps.core.client_address import client_address, client_ip
from apps.core.idempotency import IDEMPOTENCY_KEY_PARAMETER, idempotent

TAG = "auth"


class RetryAfterMixin:
    """Adds ``Retry-After`` to 429 envelopes raised as ``ApplicationError``.

    DRF's ``Throttled`` already gets the header; ``otp_locked``/``otp_resend_too_soon``
    carry the wait in ``extra.retry_after`` only, and clients (and proxies) honour the
    standard header, not our envelope.
    """

    def handle_exception(self, exc: Exception) -> Response:
        response: Response = super().handle_exception(exc)  # type: ignore[misc]
        data = getattr(response, "data", None)
        if response.status_code == 429 and "Retry-After" not in response and isinstance(data, dict):
            retry_after = (data.get("extra") or {}).get("retry_after")
            if retry_after:
                response["Retry-After"] = str(retry_after)
        return response


def _client_ip(request: Request) -> str | None:
    # The same address the throttles count (apps.core.client_address), if it is one.
    return client_ip(request)


# --- staff login and tokens ---------------------------------------------------------------


@extend_schema(
    tags=[TAG],
    summary=_("Staff login with username and password"),
    request=inline_serializer(
        name="StaffLoginInput",
        fields={"username": serializers.CharField(), "password": serializers.CharField()},
    ),
    responses={
        200: s.TokenPairOutput,
        400: error_response("invalid"),
        401: error_response("authentication_failed"),
        429: error_response(
            "rate_limited / login_locked: too many wrong passwords for this username from "
            "this address (extra.retry_after)"
        ),
    },
)
class TokenObtainApi(RetryAfterMixin, TokenObtainPairView):
    """Username + password → access and refresh tokens (phone users have no password).

    Failed passwords count towards the same per (username, address) lockout as the
    admin's login form (``apps.accounts.lockout``)."""

    throttle_classes = (LoginIpThrottle,)

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        try:
            return super().post(request, *args, **kwargs)
        except AuthenticationFailed:
            if getattr(request, "axes_locked_out", False):
                raise accounts_error(
                    AccountsErrorCode.LOGIN_LOCKED, status=429, retry_after=lockout_seconds()
                ) from None
            raise


class TokenRefreshApi(RetryAfterMixin, APIView):
    """Rotate a refresh token: the old one is revoked, a new pair comes back."""

    permission_classes = (AllowAny,)
    authentication_classes = ()

    @extend_schema(
        tags=[TAG],
        summary=_("Rotate a refresh token"),
        request=s.TokenRefreshInput,
        responses={
            200: s.TokenPairOutput,
            400: error_response("invalid"),
            401: error_response("token_invalid: expired, forged or already rotated"),
            403: error_response("account_inactive"),
        },
    )
    def post(self, request: Request) -> Response:
        data = s.TokenRefreshInput(data=request.data)
        data.is_valid(raise_exception=True)
        pair = services.tokens_refresh(refresh=data.validated_data["refresh"])
        return Response(s.TokenPairOutput(pair).data)


class LogoutApi(APIView):
    """Revoke this device's refresh token, or every refresh token of the user."""

    @extend_schema(
        tags=[TAG],
        summary=_("Log out (revoke refresh tokens)"),
        request=s.LogoutInput,
        responses={
            204: OpenApiResponse(description=_("Revoked (or nothing left to revoke).")),
            400: error_response("invalid"),
            401: error_response("not_authenticated / token_invalid"),
            403: error_response("permission_denied: the refresh token belongs to someone else"),
        },
    )
    def post(self, request: Request) -> Response:
        data = s.LogoutInput(data=request.data)
        data.is_valid(raise_exception=True)
        if data.validated_data["all"]:
            services.tokens_revoke_all(user=request.user)
        else:
            services.tokens_revoke(user=request.user, refresh=data.validated_data["refresh"])
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- phone login --------------------------------------------------------------------------


class OtpRequestApi(RetryAfterMixin, APIView):
    """Text a one-time login code to a mainland China mobile number."""

    permission_classes = (AllowAny,)
    authentication_classes = ()
    throttle_classes = (OtpRequestIpThrottle, OtpRequestPhoneThrottle)

    @extend_schema(
        tags=[TAG],
        summary=_("Request a login code by SMS"),
        request=s.OtpRequestInput,
        responses={
            202: s.OtpRequestOutput,
            400: error_response("invalid (extra.fields.phone)"),
            429: error_response(
                "rate_limited / otp_resend_too_soon (extra.retry_after); wrong guesses "
                "never refuse a new code"
            ),
        },
    )
    def post(self, request: Request) -> Response:
        data = s.OtpRequestInput(data=request.data)
        data.is_valid(raise_exception=True)
        sent = services.otp_request(phone=data.validated_data["phone"], ip=_client_ip(request))
        return Response(s.OtpRequestOutput(sent).data, status=status.HTTP_202_ACCEPTED)


class OtpVerifyApi(RetryAfterMixin, APIView):
    """Trade a login code for tokens; the first login of a number creates a citizen."""

    permission_classes = (AllowAny,)
    authentication_classes = ()
    throttle_classes = (OtpVerifyIpThrottle,)

    @extend_schema(
        tags=[TAG],
        summary=_("Log in with a code"),
        request=s.OtpVerifyInput,
        responses={
            200: s.OtpVerifyOutput,
            400: error_response(
                "invalid / otp_invalid (extra.attempts_left, extra.retry_after) / "
                "otp_expired / otp_not_pending"
            ),
            403: error_response("account_inactive"),
            429: error_response(
                "otp_locked: wait extra.retry_after seconds before guessing again "
                "(too many wrong codes from this address, or for this phone) / rate_limited"
            ),
        },
    )
    def post(self, request: Request) -> Response:
        data = s.OtpVerifyInput(data=request.data)
        data.is_valid(raise_exception=True)
        login = services.otp_verify(
            phone=data.validated_data["phone"],
            code=data.validated_data["code"],
            address=client_address(request),
        )
        return Response(s.OtpVerifyOutput(login).data)


# --- me -----------------------------------------------------------------------------------


class MeApi(APIView):
    """Who am I: identity, roles, memberships and the region scope I see."""

    @extend_schema(
        tags=["me"],
        summary=_("My profile, roles and scope"),
        responses={200: s.MeOutput, 401: error_response("not_authenticated / token_invalid")},
    )
    def get(self, request: Request) -> Response:
        return Response(s.MeOutput(selectors.user_profile(user=request.user)).data)


# --- devices ------------------------------------------------------------------------------


class DevicesApi(mixins.ListModelMixin, GenericAPIView):
    """My push devices: list them, or register/refresh this one."""

    serializer_class = s.DeviceOutput

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no user
            return Device.objects.none()
        return selectors.device_list_for_user(user=self.request.user)

    @extend_schema(
        tags=["devices"],
        summary=_("List my active devices"),
        responses={200: s.DeviceOutput(many=True)},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.list(request, *args, **kwargs)

    @extend_schema(
        tags=["devices"],
        summary=_("Register or refresh this device's push token"),
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        request=s.DeviceRegisterInput,
        responses={
            201: s.DeviceOutput,
            200: s.DeviceOutput,
            400: error_response("invalid / parse_error / idempotency_key_invalid"),
            409: error_response("idempotency_in_progress"),
            422: error_response("idempotency_key_reused"),
        },
    )
    @idempotent
    def post(self, request: Request) -> Response:
        data = s.DeviceRegisterInput(data=request.data)
        data.is_valid(raise_exception=True)
        device, created = services.device_register(user=request.user, **data.validated_data)
        return Response(
            s.DeviceOutput(device).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class DeviceDetailApi(APIView):
    """One of my devices."""

    @extend_schema(
        tags=["devices"],
        summary=_("Stop push messages to one of my devices"),
        responses={
            204: OpenApiResponse(description=_("Deactivated.")),
            404: error_response("not_found"),
        },
    )
    def delete(self, request: Request, device_id: int) -> Response:
        services.device_deactivate(user=request.user, device_id=device_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
