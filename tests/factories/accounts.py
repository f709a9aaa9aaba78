"""factory_boy factories for apps.accounts.

``MembershipFactory`` writes plain rows (fast, no side effects); ``StaffUserFactory``
grants through ``membership_grant`` so ``is_staff`` and the role group are set exactly
as in production.
"""

from __future__ import annotations

import hashlib
from typing import Any

import factory
from django.contrib.auth.hashers import make_password
from factory.django import DjangoModelFactory, Password

from apps.accounts.models import Device, Membership, Platform, Role, User

DEFAULT_PASSWORD = "correct horse battery staple"


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    display_name = factory.Sequence(lambda n: f"用户{n}")
    password = Password(DEFAULT_PASSWORD)


class StaffUserFactory(UserFactory):
    """``StaffUserFactory(region=fengxi, region__role=Role.COMMANDER)``; role defaults
    to operator. Without ``region`` it is a password user with no membership."""

    @factory.post_generation
    def region(obj: User, create: bool, extracted: Any, **kwargs: Any) -> None:
        if create and extracted is not None:
            from apps.accounts.services import membership_grant

            membership_grant(user=obj, region=extracted, role=kwargs.get("role", Role.OPERATOR))


class CitizenFactory(DjangoModelFactory):
    """A phone user as the OTP login creates them: no usable password."""

    class Meta:
        model = User

    username = factory.Sequence(lambda n: f"citizen-{n:05d}")
    phone = factory.Sequence(lambda n: f"+86139{n:08d}")
    password = factory.LazyFunction(lambda: make_password(None))


class MembershipFactory(DjangoModelFactory):
    """Pass ``region=``: the test tree lives in tests/accounts/conftest.py."""

    class Meta:
        model = Membership

    user = factory.SubFactory(CitizenFactory)
    role = Role.RESPONDER
    is_active = True


class DeviceFactory(DjangoModelFactory):
    class Meta:
        model = Device

    user = factory.SubFactory(CitizenFactory)
    token = factory.Sequence(lambda n: f"fcm-{n:06d}-" + "x" * 140)
    token_hash = factory.LazyAttribute(lambda o: hashlib.sha256(o.token.encode()).hexdigest())
    platform = Platform.ANDROID
    app_version = "1.0.0"
    locale = "zh-Hans"
