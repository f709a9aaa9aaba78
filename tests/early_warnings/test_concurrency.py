"""Two approvers pressing "approve" at once: one publishes, the other gets a 409.

Real threads, real PostgreSQL row locks (the chain row), released together by a barrier.
"""

from __future__ import annotations

import pytest
from django.db import connection

from apps.accounts.services import membership_grant
from apps.core.errors import ApplicationError
from apps.early_warnings import services
from apps.early_warnings.models import Acknowledgement, WarningStatus, WarningVersion
from apps.notifications.models import Notification
from tests.early_warnings.conftest import Cast
from tests.factories.accounts import StaffUserFactory
from tests.factories.early_warnings import draft
from tests.incidents.test_concurrency import race

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def test_two_approvers_at_once_publish_the_warning_exactly_once(cast: Cast) -> None:
    assert connection.vendor == "postgresql"
    # given a blue warning for 三桥 awaiting approval and two operators of 沣东 who may approve
    version = draft(by=cast.town_operator, targets=[cast.sanqiao.pk])
    services.warning_submit(version_id=version.pk, by=cast.town_operator)
    second = StaffUserFactory(region=cast.tree.fengdong)
    membership_grant(user=second, region=cast.tree.fengdong, role="operator")
    approvers = [cast.town_operator2, second]
    # when both approve at the same moment
    results, errors = race(
        [
            lambda user=user: services.warning_approve(version_id=version.pk, by=user)
            for user in approvers
        ]
    )
    # then one wins and the other gets the machine-readable 409
    assert len(results) == 1
    assert len(errors) == 1
    assert isinstance(errors[0], ApplicationError)
    assert errors[0].code == "warning_illegal_transition"
    assert errors[0].status == 409
    version = WarningVersion.objects.get(pk=version.pk)
    assert version.status == WarningStatus.PUBLISHED
    assert version.approved_by_id == results[0].approved_by_id
    # and everything was sent once
    people = Acknowledgement.objects.filter(version=version).count()
    assert people >= 4
    assert Notification.objects.filter(dedupe_key__startswith=f"ew:{version.pk}:").count() == (
        1 + people
    )
