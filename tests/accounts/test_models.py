from __future__ import annotations

import pytest
from django.db import IntegrityError

from apps.accounts.models import Membership, Role, User
from apps.accounts.phones import PhoneNumberError, phone_mask, phone_normalise
from tests.accounts.conftest import Tree
from tests.factories.accounts import CitizenFactory, DeviceFactory, MembershipFactory


@pytest.mark.parametrize(
    "raw",
    [
        "13800138000",
        "+86 138-0013-8000",
        "8613800138000",
        "0086 138 0013 8000",
        "(+86) 138.0013.8000",
        "＋８６１３８００１３８０００",  # full-width, as typed on a Chinese keyboard
    ],
)
def test_mainland_mobile_numbers_normalise_to_e164(raw: str) -> None:
    assert phone_normalise(raw) == "+8613800138000"


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "12800138000",
        "1380013800",
        "138001380001",
        "+1 415 555 0100",
        "138abc38000",
        "010-12345678",
    ],
)
def test_anything_but_a_mainland_mobile_number_is_refused(raw: str) -> None:
    with pytest.raises(PhoneNumberError):
        phone_normalise(raw)


def test_masked_phone_keeps_prefix_and_last_four_digits() -> None:
    assert phone_mask("+8613800138000") == "+86138****8000"


@pytest.mark.django_db
def test_a_phone_that_is_not_e164_cannot_be_stored() -> None:
    with pytest.raises(IntegrityError):
        User.objects.create(username="raw", phone="13800138000")


@pytest.mark.django_db
def test_many_users_may_have_no_phone() -> None:
    User.objects.create(username="a", phone=None)
    User.objects.create(username="b", phone=None)
    assert User.objects.filter(phone__isnull=True).count() == 2


def test_one_role_per_user_and_region(tree: Tree) -> None:
    # given
    membership = MembershipFactory(region=tree.sanqiao, role=Role.RESPONDER)
    # when / then
    with pytest.raises(IntegrityError):
        Membership.objects.create(user=membership.user, region=tree.sanqiao, role=Role.RESPONDER)


def test_an_unknown_role_cannot_be_stored(tree: Tree) -> None:
    with pytest.raises(IntegrityError):
        Membership.objects.create(user=CitizenFactory(), region=tree.sanqiao, role="king")


@pytest.mark.django_db
def test_device_string_shows_only_the_token_tail() -> None:
    device = DeviceFactory()
    assert device.token[:10] not in str(device)
    assert str(device).endswith(device.token[-8:])
