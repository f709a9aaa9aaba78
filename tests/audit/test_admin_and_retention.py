"""The trail cannot be edited (admin, model, database) and is kept at least 180 days."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.db.utils import DatabaseError
from django.test import Client
from django.utils import timezone

from apps.accounts.models import Role, User
from apps.audit.models import AuditEntry, AuditEntryImmutable
from apps.audit.tasks import audit_prune
from tests.factories.accounts import StaffUserFactory
from tests.factories.regions import NewTownFactory

pytestmark = pytest.mark.django_db


def _entry(days_ago: float = 0, **fields: Any) -> AuditEntry:
    values = {
        "at": timezone.now() - timedelta(days=days_ago),
        "action": AuditEntry.Action.WRITE,
        "channel": AuditEntry.Channel.API,
        "method": "POST",
        "path": "/api/v1/incidents/",
        "status": 201,
    }
    values.update(fields)
    return AuditEntry.objects.create(**values)


@pytest.fixture
def superuser_client(client: Client) -> Client:
    client.force_login(User.objects.create_superuser("root-audit", password="x" * 12))
    return client


def test_the_admin_shows_entries_but_refuses_add_change_and_delete_even_to_a_superuser(
    superuser_client: Client,
) -> None:
    # given
    entry = _entry(actor_label="op-fengdong", client_address="198.51.100.9")
    url = f"/admin/audit/auditentry/{entry.pk}/"
    # when
    listing = superuser_client.get("/admin/audit/auditentry/?q=198.51.100.9")
    shown = superuser_client.get(f"{url}change/")
    add = superuser_client.get("/admin/audit/auditentry/add/")
    change = superuser_client.post(f"{url}change/", {"status": "200"})
    delete = superuser_client.post(f"{url}delete/", {"post": "yes"})
    bulk = superuser_client.post(
        "/admin/audit/auditentry/",
        {"action": "delete_selected", "_selected_action": [entry.pk], "post": "yes"},
    )
    # then
    assert listing.status_code == 200
    assert [e.pk for e in listing.context["cl"].result_list] == [entry.pk]
    assert shown.status_code == 200
    assert "op-fengdong" in shown.content.decode()
    assert add.status_code == 403
    assert change.status_code == 403
    assert delete.status_code == 403
    assert bulk.status_code in (200, 302)
    entry.refresh_from_db()
    assert entry.status == 201
    assert AuditEntry.objects.filter(pk=entry.pk).exists()


def test_a_scoped_commander_sees_the_entries_of_people_in_their_regions_only(
    client: Client,
) -> None:
    # given
    fengdong = NewTownFactory(code="fengdong", name_zh="沣东新城")
    fengxi = NewTownFactory(code="fengxi", name_zh="沣西新城")
    commander = StaffUserFactory(region=fengdong, region__role=Role.COMMANDER)
    mine = StaffUserFactory(region=fengdong)
    theirs = StaffUserFactory(region=fengxi)
    seen = _entry(actor=mine)
    _entry(actor=theirs)
    _entry(actor=None)  # an anonymous citizen
    client.force_login(commander)
    # when
    response = client.get("/admin/audit/auditentry/")
    # then
    assert response.status_code == 200
    assert [e.pk for e in response.context["cl"].result_list] == [seen.pk]


def test_the_model_refuses_to_change_or_delete_entries() -> None:
    entry = _entry()
    entry.status = 500
    with pytest.raises(AuditEntryImmutable):
        entry.save()
    with pytest.raises(AuditEntryImmutable):
        entry.delete()
    with pytest.raises(AuditEntryImmutable):
        AuditEntry.objects.filter(pk=entry.pk).update(status=500)
    with pytest.raises(AuditEntryImmutable):
        AuditEntry.objects.all().delete()


@pytest.mark.services
def test_postgresql_refuses_raw_updates_and_deletes_of_young_entries() -> None:
    young = _entry(days_ago=10)
    old = _entry(days_ago=181)
    with connection.cursor() as cursor:
        for sql, params in (
            ("UPDATE audit_auditentry SET status = 500 WHERE id = %s", [old.pk]),
            ("DELETE FROM audit_auditentry WHERE id = %s", [young.pk]),
        ):
            with pytest.raises(DatabaseError), transaction.atomic():
                cursor.execute(sql, params)
        cursor.execute("DELETE FROM audit_auditentry WHERE id = %s", [old.pk])
    assert list(AuditEntry.objects.values_list("pk", flat=True)) == [young.pk]


def test_pruning_keeps_180_days_and_refuses_a_shorter_period() -> None:
    # given
    kept = [_entry(days_ago=1), _entry(days_ago=179)]
    _entry(days_ago=181)
    _entry(days_ago=400)
    # when
    out = StringIO()
    call_command("prune_audit", "--older-than-days", "180", stdout=out)
    # then
    assert "deleted 2" in out.getvalue()
    assert sorted(AuditEntry.objects.values_list("pk", flat=True)) == sorted(e.pk for e in kept)
    with pytest.raises(CommandError, match="180"):
        call_command("prune_audit", "--older-than-days", "179")
    assert AuditEntry.objects.count() == 2


def test_the_daily_task_prunes_by_the_retention_setting(settings: Any) -> None:
    from xixian_ems.celery import app

    assert settings.CELERY_BEAT_SCHEDULE["audit-prune"]["task"] == audit_prune.name
    assert audit_prune.name in app.tasks
    settings.AUDIT_RETENTION_DAYS = 365
    _entry(days_ago=200)
    _entry(days_ago=366)
    assert audit_prune() == 1
    assert AuditEntry.objects.count() == 1
