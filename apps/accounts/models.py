"""Users, their roles in regions, their devices, and one-time login codes."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.db.models import Q
from django.utils.timezone import localtime
from django.utils.translation import gettext_lazy as _

from apps.core.models import BaseModel


class Role(models.TextChoices):
    """What a membership lets its holder do in its region.

    The community tier has two people: the community duty officer is an ``operator``
    membership at the community (社区/村), with an operator's admin pages inside that
    community; the grid worker (网格员) is ``grid_worker``, a field role of the mobile app
    (no admin): they read the incidents of their community and its event stream and
    get its pushes, but they are no team's member, so they are never dispatched.
    """

    CITIZEN = "citizen", _("Citizen")
    RESPONDER = "responder", _("Responder")
    GRID_WORKER = "grid_worker", _("Grid worker")
    TEAM_LEADER = "team_leader", _("Team leader")
    OPERATOR = "operator", _("Operator / duty officer")
    COMMANDER = "commander", _("Commander")
    DEPARTMENT_LIAISON = "department_liaison", _("Department liaison")
    ADMIN = "admin", _("Administrator")


# Roles that work in the command-centre admin (is_staff follows these memberships).
STAFF_ROLES = frozenset({Role.OPERATOR, Role.COMMANDER, Role.DEPARTMENT_LIAISON, Role.ADMIN})
# Roles that work in the field through the mobile app.
FIELD_ROLES = frozenset({Role.RESPONDER, Role.TEAM_LEADER, Role.GRID_WORKER})
# Seniority, for "who may grant what": nobody grants a role above their own.
ROLE_RANK: dict[str, int] = {
    Role.CITIZEN: 0,
    Role.RESPONDER: 1,
    Role.GRID_WORKER: 1,
    Role.TEAM_LEADER: 2,
    Role.DEPARTMENT_LIAISON: 3,
    Role.OPERATOR: 3,
    Role.COMMANDER: 4,
    Role.ADMIN: 5,
}


class User(AbstractUser):
    """A person. Staff log in by username + password; citizens and responders by phone + OTP.

    Custom from the first migration so phone identity never needs a table swap.
    ``phone`` is E.164 (``+8613800000000``) and unique when present.
    """

    phone = models.CharField(_("phone number"), max_length=20, null=True, blank=True, unique=True)
    display_name = models.CharField(_("display name"), max_length=100, blank=True)
    phone_verified_at = models.DateTimeField(_("phone verified at"), null=True, blank=True)

    objects = UserManager()

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        ordering = ["id"]
        constraints = [
            # Normalised by apps.accounts.phones before every write; a raw "138..." row
            # would never match a login and would dodge the unique index.
            models.CheckConstraint(
                condition=Q(phone__isnull=True) | Q(phone__regex=r"^\+[1-9][0-9]{6,14}$"),
                name="accounts_user_phone_e164",
            ),
        ]

    def __str__(self) -> str:
        return self.display_name or self.username


class Membership(BaseModel):
    """``user`` holds ``role`` in ``region`` and everything below it (the scope unit).

    Revoking deactivates the row instead of deleting it, so "who was on duty where" stays
    answerable. Written only through ``services.membership_grant``/``membership_revoke``,
    which keep ``User.is_staff`` and the role groups in step.
    """

    Role = Role

    user = models.ForeignKey(
        User, verbose_name=_("user"), on_delete=models.CASCADE, related_name="memberships"
    )
    region = models.ForeignKey(
        "regions.Region",
        verbose_name=_("region"),
        on_delete=models.PROTECT,
        related_name="memberships",
    )
    role = models.CharField(_("role"), max_length=24, choices=Role.choices)
    is_active = models.BooleanField(_("active"), default=True)
    granted_by = models.ForeignKey(
        User,
        verbose_name=_("granted by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        ordering = ["user_id", "region__path"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "region", "role"], name="accounts_membership_uniq"
            ),
            models.CheckConstraint(
                condition=Q(role__in=Role.values), name="accounts_membership_role_valid"
            ),
        ]
        indexes = [
            # Scope resolution: a user's active memberships, on every request.
            models.Index(
                fields=["user"], name="accounts_member_active_idx", condition=Q(is_active=True)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} · {self.get_role_display()} · {self.region}"


class Platform(models.TextChoices):
    ANDROID = "android", _("Android")
    IOS = "ios", _("iOS")
    WEB = "web", _("Web")


class Device(BaseModel):
    """A phone or browser that receives push messages (FCM registration token)."""

    Platform = Platform

    user = models.ForeignKey(
        User, verbose_name=_("user"), on_delete=models.CASCADE, related_name="devices"
    )
    token = models.CharField(_("push token"), max_length=4096)
    token_hash = models.CharField(_("push token hash"), max_length=64, unique=True, editable=False)
    platform = models.CharField(_("platform"), max_length=10, choices=Platform.choices)
    app_version = models.CharField(_("app version"), max_length=32, blank=True)
    locale = models.CharField(_("locale"), max_length=16, blank=True)
    last_seen_at = models.DateTimeField(_("last seen at"), null=True, blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("device")
        verbose_name_plural = _("devices")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(platform__in=Platform.values), name="accounts_device_platform_valid"
            ),
        ]
        indexes = [
            # Push fan-out: the active devices of a user.
            models.Index(
                fields=["user"], name="accounts_device_active_idx", condition=Q(is_active=True)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} · {self.platform} · …{self.token[-8:]}"


class OtpChallenge(BaseModel):
    """A one-time login code sent to ``phone``. Only a hash of the code is stored.

    ``attempts`` counts wrong guesses against this code from every address together; at
    ``OTP_MAX_ATTEMPTS`` the code is burnt (a new one may be requested at once). How fast
    anyone may guess is :class:`OtpFailureCounter`'s business, never a lock on the phone
    (``apps.accounts.services``, "Phone login").
    """

    phone = models.CharField(_("phone number"), max_length=20)
    code_hash = models.CharField(_("code hash"), max_length=128)
    expires_at = models.DateTimeField(_("expires at"))
    attempts = models.PositiveSmallIntegerField(_("failed attempts"), default=0)
    consumed_at = models.DateTimeField(_("consumed at"), null=True, blank=True)
    requested_ip = models.GenericIPAddressField(_("requested from"), null=True, blank=True)

    class Meta:
        verbose_name = _("one-time code")
        verbose_name_plural = _("one-time codes")
        ordering = ["-created_at", "-id"]
        indexes = [
            # Verification reads the newest challenge of a phone.
            models.Index(fields=["phone", "-created_at"], name="accounts_otp_phone_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.phone} @ {localtime(self.created_at):%Y-%m-%d %H:%M}"


class OtpFailureCounter(BaseModel):
    """Wrong one-time codes for ``phone`` from one ``address`` (an IPv4 address or an IPv6
    /64), or from every address together (``address == "*"``).

    Past a free allowance each further wrong guess makes the next one wait twice as long
    (``blocked_until``); a login from the address clears its row, and a row with no
    failure for ``OTP_FAILURE_WINDOW_SECONDS`` starts again from zero. Written only by
    ``services.otp_verify`` under the row lock of the phone's newest challenge.
    """

    EVERY_ADDRESS = "*"

    phone = models.CharField(_("phone number"), max_length=20)
    address = models.CharField(_("address"), max_length=64)
    failures = models.PositiveIntegerField(_("wrong codes"), default=0)
    last_failure_at = models.DateTimeField(_("last wrong code at"), null=True, blank=True)
    blocked_until = models.DateTimeField(_("next guess allowed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("one-time code failure counter")
        verbose_name_plural = _("one-time code failure counters")
        ordering = ["phone", "address"]
        constraints = [
            models.UniqueConstraint(fields=["phone", "address"], name="accounts_otpfail_uniq"),
        ]
        indexes = [
            # The stale-row purge.
            models.Index(fields=["last_failure_at"], name="accounts_otpfail_last_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.phone} · {self.address} · {self.failures}"
