"""Command-centre admin for people, memberships and devices, narrowed to the viewer's scope.

Every list and object page goes through the one visibility rule (``apps.core.scoping``)
via ``RegionScopedAdminMixin``; memberships are written only through the services, so
``is_staff`` and the role groups always follow them.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from rest_framework_simplejwt.token_blacklist.admin import (
    BlacklistedTokenAdmin as BaseBlacklistedTokenAdmin,
)
from rest_framework_simplejwt.token_blacklist.admin import (
    OutstandingTokenAdmin as BaseOutstandingTokenAdmin,
)
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from unfold.admin import ModelAdmin, TabularInline
from unfold.forms import AdminPasswordChangeForm
from unfold.forms import UserChangeForm as UnfoldUserChangeForm
from unfold.forms import UserCreationForm as UnfoldUserCreationForm

from apps.accounts import selectors, services
from apps.accounts.admin_mixins import InternalAdminMixin
from apps.accounts.models import Device, Membership, OtpChallenge, OtpFailureCounter, User
from apps.accounts.phones import PhoneNumberError, phone_mask, phone_normalise
from apps.audit.personal import PersonalDataAdminMixin
from apps.core.admin_mixins import ReadOnlyAdminMixin
from apps.core.errors import ApplicationError
from apps.core.scoping import restrict
from apps.regions.admin_mixins import RegionScopedAdminMixin

# --- users --------------------------------------------------------------------------------


class MembershipInline(TabularInline):
    """Read-only here: memberships change on their own page, through the services."""

    model = Membership
    fk_name = "user"
    extra = 0
    can_delete = False
    show_change_link = True
    fields = ("region", "role", "is_active", "granted_by", "created_at")
    readonly_fields = fields
    verbose_name = _("membership")
    verbose_name_plural = _("memberships")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Membership]:
        # Scoped too: a person may also hold roles in regions the viewer must not see.
        qs = super().get_queryset(request).select_related("region", "granted_by")
        return restrict(qs, request.user, "region__path")


def _clean_phone(raw: str | None) -> str | None:
    if not raw:
        return None  # NULL, not "": the unique index allows many NULLs, one ""
    try:
        return phone_normalise(raw)
    except PhoneNumberError as exc:
        raise ValidationError(exc.message, code="phone_invalid") from None


class UserChangeForm(UnfoldUserChangeForm):
    def clean_phone(self) -> str | None:
        return _clean_phone(self.cleaned_data.get("phone"))


class UserCreationForm(UnfoldUserCreationForm):
    class Meta(UnfoldUserCreationForm.Meta):
        model = User
        fields = ("username", "display_name", "phone")

    def clean_phone(self) -> str | None:
        return _clean_phone(self.cleaned_data.get("phone"))


@admin.register(User)
class UserAdmin(PersonalDataAdminMixin, RegionScopedAdminMixin, DjangoUserAdmin, ModelAdmin):
    """People. Non-superusers see users holding an active membership in their scope and
    may never touch staff flags, groups or permissions, nor anyone as senior as them.
    Showing someone's phone number or e-mail leaves an audit entry."""

    audit_personal_fields = ("phone", "email")

    region_path_field = "memberships__region__path"
    form = UserChangeForm
    add_form = UserCreationForm
    change_password_form = AdminPasswordChangeForm
    inlines = (MembershipInline,)
    list_display = ("username", "display_name", "phone", "is_staff", "is_active", "last_login")
    list_filter = ("is_staff", "is_superuser", "is_active", "memberships__role")
    search_fields = ("username", "display_name", "phone", "first_name", "last_name", "email")
    ordering = ("username",)
    readonly_fields = ("phone_verified_at", "last_login", "date_joined")
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        (_("Identity"), {"fields": ("display_name", "phone", "phone_verified_at")}),
        (_("Personal info"), {"fields": ("first_name", "last_name", "email")}),
        (
            _("Permissions"),
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("username", "display_name", "phone", "password1", "password2"),
            },
        ),
    )
    _staff_only_fields = ("is_staff", "is_superuser", "groups", "user_permissions")

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        # The mixin narrows by membership path through a join (duplicates, and it cannot
        # require the *same* membership to be active); intersect with the selector.
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        visible = selectors.user_list_visible(viewer=request.user).values("pk")
        return qs.filter(pk__in=visible).distinct()

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        if request.user.is_superuser or obj is None:
            return fieldsets
        # Privilege flags are superuser business; roles come from memberships.
        return [
            (
                name,
                {
                    **options,
                    "fields": [f for f in options["fields"] if f not in self._staff_only_fields],
                },
            )
            for name, options in fieldsets
        ]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        allowed = super().has_change_permission(request, obj)
        if not allowed or obj is None or request.user.is_superuser:
            return allowed
        # Nobody edits (or resets the password of) a superuser or a peer/senior.
        return not obj.is_superuser and selectors.user_rank(user=obj) < selectors.user_rank(
            user=request.user
        )


# --- memberships --------------------------------------------------------------------------


class MembershipAdminForm(forms.ModelForm):
    """Checks the grant rules up front so a refusal is a form error, not a 500."""

    request_user: Any = None

    class Meta:
        model = Membership
        fields = ("user", "region", "role", "is_active")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        region = cleaned.get("region") or getattr(self.instance, "region", None)
        role = cleaned.get("role") or self.instance.role
        if region is not None and role:
            try:
                services.membership_check_grantable(by=self.request_user, region=region, role=role)
            except ApplicationError as exc:
                raise ValidationError(exc.message, code=exc.code) from None
        return cleaned


@admin.register(Membership)
class MembershipAdmin(RegionScopedAdminMixin, ModelAdmin):
    """Who holds which role where. Revoking unticks "active"; rows are never deleted."""

    region_path_field = "region__path"
    form = MembershipAdminForm
    list_display = ("user", "role", "region", "is_active", "granted_by", "created_at")
    list_filter = ("role", "is_active", "region__level")
    search_fields = (
        "user__username",
        "user__display_name",
        "user__phone",
        "region__name_zh",
        "region__code",
    )
    list_select_related = ("user", "region", "granted_by")
    # New people enrol themselves by phone (OTP) first; an operator then grants them a
    # role by user id. A choice list of every user would show all citizens to everyone.
    raw_id_fields = ("user",)
    readonly_fields = ("granted_by", "created_at", "updated_at")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return self.readonly_fields
        # A different user/region/role is a different grant: add it, revoke this one.
        return ("user", "region", "role", *self.readonly_fields)

    def get_form(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, **kwargs)
        return type(form.__name__, (form,), {"request_user": request.user})

    def save_model(self, request: HttpRequest, obj: Membership, form: Any, change: bool) -> None:
        wants_active = obj.is_active
        saved = obj
        if not change or wants_active:
            saved = services.membership_grant(
                user=obj.user, region=obj.region, role=obj.role, by=request.user
            )
        if not wants_active:
            saved = services.membership_revoke(membership=saved, by=request.user)
        obj.pk = saved.pk
        obj.is_active = saved.is_active
        obj.granted_by = saved.granted_by
        obj._state.adding = False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --- devices ------------------------------------------------------------------------------


@admin.register(Device)
class DeviceAdmin(InternalAdminMixin, RegionScopedAdminMixin, ModelAdmin):
    """Push devices of the people in scope; the token itself is never shown in full."""

    region_path_field = "user__memberships__region__path"
    list_display = ("user", "platform", "app_version", "token_preview", "is_active", "last_seen_at")
    list_filter = ("platform", "is_active")
    search_fields = ("user__username", "user__display_name", "user__phone", "app_version")
    list_select_related = ("user",)
    fields = (
        "user",
        "platform",
        "app_version",
        "locale",
        "token_preview",
        "is_active",
        "last_seen_at",
        "created_at",
    )
    readonly_fields = fields  # devices change from the app; here only the action below
    actions = ("deactivate_devices",)

    @admin.action(
        description=_("Stop push messages to the selected devices"), permissions=["change"]
    )
    def deactivate_devices(self, request: HttpRequest, queryset: QuerySet[Device]) -> None:
        for device in queryset.select_related("user"):
            services.device_deactivate(user=device.user, device_id=device.pk)

    @admin.display(description=_("push token"))
    def token_preview(self, obj: Device) -> str:
        return f"{obj.token[:6]}…{obj.token[-6:]}" if len(obj.token) > 16 else "…"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Device]:
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        visible = selectors.device_list_visible(viewer=request.user).values("pk")
        return qs.filter(pk__in=visible).distinct()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # devices register themselves from the app


# --- one-time codes -----------------------------------------------------------------------


@admin.register(OtpChallenge)
class OtpChallengeAdmin(ReadOnlyAdminMixin, ModelAdmin):
    """Diagnostics for superusers (why can this citizen not log in?). Never the code."""

    list_display = (
        "masked_phone",
        "created_at",
        "expires_at",
        "attempts",
        "consumed_at",
        "requested_ip",
    )
    search_fields = ("phone",)
    list_filter = ("consumed_at",)
    fields = (
        "phone",
        "created_at",
        "expires_at",
        "attempts",
        "consumed_at",
        "requested_ip",
    )
    readonly_fields = fields

    @admin.display(description=_("phone number"))
    def masked_phone(self, obj: OtpChallenge) -> str:
        return phone_mask(obj.phone)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser


@admin.register(OtpFailureCounter)
class OtpFailureCounterAdmin(ModelAdmin):
    """Why must this number wait before guessing? Superusers may delete a row to lift a
    backoff (a responder kept waiting by a distributed attack, say); nothing else."""

    list_display = ("masked_phone", "address", "failures", "last_failure_at", "blocked_until")
    search_fields = ("phone", "address")
    fields = ("phone", "address", "failures", "last_failure_at", "blocked_until")
    readonly_fields = fields

    @admin.display(description=_("phone number"))
    def masked_phone(self, obj: OtpFailureCounter) -> str:
        return phone_mask(obj.phone)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser


# --- Django's and simplejwt's own pages: the theme, and administrators only ----------------

admin.site.unregister(Group)
admin.site.unregister(OutstandingToken)
admin.site.unregister(BlacklistedToken)


@admin.register(Group)
class GroupAdmin(InternalAdminMixin, DjangoGroupAdmin, ModelAdmin):
    """Role groups are kept by ``ensure_role_groups``; shown to administrators."""


@admin.register(OutstandingToken)
class OutstandingTokenAdmin(InternalAdminMixin, BaseOutstandingTokenAdmin, ModelAdmin):
    pass


@admin.register(BlacklistedToken)
class BlacklistedTokenAdmin(InternalAdminMixin, BaseBlacklistedTokenAdmin, ModelAdmin):
    pass
