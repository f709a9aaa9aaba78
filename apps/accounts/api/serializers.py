"""Input and output shapes of the accounts API (plain serializers, conventions R7)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from apps.accounts.models import Platform
from apps.accounts.phones import PhoneNumberError, phone_normalise


class PhoneField(serializers.CharField):
    """A mainland China mobile number, normalised to E.164 on input."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 32)
        kwargs.setdefault("help_text", _("Mainland China mobile number, e.g. 13800138000."))
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        raw = super().to_internal_value(data)
        try:
            return phone_normalise(raw)
        except PhoneNumberError as exc:
            raise serializers.ValidationError(exc.message, code="phone_invalid") from None


# --- tokens -------------------------------------------------------------------------------


class TokenPairOutput(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()


class TokenRefreshInput(serializers.Serializer):
    refresh = serializers.CharField()


class LogoutInput(serializers.Serializer):
    refresh = serializers.CharField(
        required=False, help_text=_("The refresh token of this device, to revoke.")
    )
    all = serializers.BooleanField(
        default=False, help_text=_("Revoke every refresh token of the user (all devices).")
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("refresh") and not attrs["all"]:
            raise serializers.ValidationError(
                _("Send the refresh token to revoke, or all=true."), code="required"
            )
        return attrs


# --- OTP ----------------------------------------------------------------------------------


class OtpRequestInput(serializers.Serializer):
    phone = PhoneField()


class OtpRequestOutput(serializers.Serializer):
    expires_in = serializers.IntegerField(help_text=_("Seconds until the code expires."))
    resend_after = serializers.IntegerField(help_text=_("Seconds before a new code may be sent."))


class OtpVerifyInput(serializers.Serializer):
    phone = PhoneField()
    code = serializers.RegexField(
        regex=r"^\d+$", min_length=settings.OTP_LENGTH, max_length=settings.OTP_LENGTH
    )


class UserBriefOutput(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    phone = serializers.CharField(allow_null=True)
    display_name = serializers.CharField()


class OtpVerifyOutput(serializers.Serializer):
    access = serializers.CharField(source="tokens.access")
    refresh = serializers.CharField(source="tokens.refresh")
    user = UserBriefOutput()
    created = serializers.BooleanField(help_text=_("True when this login created the account."))


# --- me -----------------------------------------------------------------------------------


class RegionBriefOutput(serializers.Serializer):
    code = serializers.CharField()
    name_zh = serializers.CharField()
    name_en = serializers.CharField()
    level = serializers.CharField()
    path = serializers.CharField()


class MembershipOutput(serializers.Serializer):
    region = RegionBriefOutput()
    role = serializers.CharField()


class ScopeOutput(serializers.Serializer):
    """``{"global": bool, "paths": [...]}``; ``global`` is a keyword, so fields are built."""

    def get_fields(self) -> dict[str, serializers.Field]:
        return {
            "global": serializers.BooleanField(
                source="is_global", help_text=_("True when the user sees the whole tree.")
            ),
            "paths": serializers.ListField(
                child=serializers.CharField(),
                help_text=_("Region paths whose subtrees the user sees."),
            ),
        }


class MeOutput(serializers.Serializer):
    id = serializers.IntegerField(source="user.id")
    username = serializers.CharField(source="user.username")
    phone = serializers.CharField(source="user.phone", allow_null=True)
    display_name = serializers.CharField(source="user.display_name")
    is_staff = serializers.BooleanField(source="user.is_staff")
    roles = serializers.ListField(child=serializers.CharField())
    memberships = MembershipOutput(many=True)
    scope = ScopeOutput()


# --- devices ------------------------------------------------------------------------------


class DeviceRegisterInput(serializers.Serializer):
    token = serializers.CharField(max_length=4096, help_text=_("FCM registration token."))
    platform = serializers.ChoiceField(choices=Platform.choices)
    app_version = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")
    locale = serializers.CharField(max_length=16, required=False, allow_blank=True, default="")


class DeviceOutput(serializers.Serializer):
    id = serializers.IntegerField()
    platform = serializers.CharField()
    app_version = serializers.CharField()
    locale = serializers.CharField()
    is_active = serializers.BooleanField()
    last_seen_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
