"""Incident transitions: every allowed move, every refusal, and what each one writes."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts.models import User
from apps.core.errors import ApplicationError
from apps.incidents.models import (
    Incident,
    IncidentEvent,
    IncidentStatus,
    PublicStatus,
    Report,
    ReportStatus,
    Severity,
)
from apps.incidents.public_status import public_status_for
from apps.incidents.services import incidents as services
from apps.incidents.transitions import (
    TRANSITIONS,
    IncidentAction,
    allowed_actions,
    transition_target,
)
from tests.factories.accounts import UserFactory
from tests.factories.incidents import (
    CategoryFactory,
    IncidentFactory,
    WaterloggingCategoryFactory,
)

pytestmark = pytest.mark.django_db

S = IncidentStatus
EVENT_KIND: dict[IncidentAction, str] = {
    IncidentAction.ACCEPT: IncidentEvent.Kind.ACCEPTED,
    IncidentAction.REJECT: IncidentEvent.Kind.REJECTED,
    IncidentAction.START: IncidentEvent.Kind.STARTED,
    IncidentAction.RESOLVE: IncidentEvent.Kind.RESOLVED,
    IncidentAction.CLOSE: IncidentEvent.Kind.CLOSED,
    IncidentAction.REOPEN: IncidentEvent.Kind.REOPENED,
    IncidentAction.MERGE: IncidentEvent.Kind.MERGED,
    IncidentAction.CLASSIFY: IncidentEvent.Kind.CLASSIFIED,
    IncidentAction.REVISE_CASUALTIES: IncidentEvent.Kind.CASUALTIES_REVISED,
    IncidentAction.NOTE: IncidentEvent.Kind.NOTE,
}
PUBLIC_ACTIONS = {
    IncidentAction.ACCEPT,
    IncidentAction.REJECT,
    IncidentAction.START,
    IncidentAction.RESOLVE,
    IncidentAction.CLOSE,
    IncidentAction.REOPEN,
    IncidentAction.MERGE,
}


@pytest.fixture
def operator() -> User:
    return UserFactory()


def make_incident(status: str, **kwargs: Any) -> Incident:
    """An incident sitting in ``status`` (set-up only: written directly)."""
    if status == S.MERGED:
        kwargs.setdefault("merged_into", IncidentFactory())
    return IncidentFactory(status=status, **kwargs)


def perform(action: IncidentAction, incident: Incident, by: User) -> Any:
    """Run ``action`` on ``incident`` with arguments that are valid apart from status."""
    calls: dict[IncidentAction, Callable[[], Any]] = {
        IncidentAction.ACCEPT: lambda: services.incident_accept(incident_id=incident.pk, by=by),
        IncidentAction.REJECT: lambda: services.incident_reject(
            incident_id=incident.pk, by=by, reason="重复来电，现场无险情"
        ),
        IncidentAction.START: lambda: services.incident_start(incident_id=incident.pk, by=by),
        IncidentAction.RESOLVE: lambda: services.incident_resolve(
            incident_id=incident.pk, by=by, resolution="积水已排除"
        ),
        IncidentAction.CLOSE: lambda: services.incident_close(incident_id=incident.pk, by=by),
        IncidentAction.REOPEN: lambda: services.incident_reopen(
            incident_id=incident.pk, by=by, reason="回访发现仍有积水"
        ),
        IncidentAction.MERGE: lambda: services.incident_merge(
            incident_id=incident.pk,
            into_id=IncidentFactory(region=incident.region).pk,
            by=by,
        ),
        IncidentAction.CLASSIFY: lambda: services.incident_classify(
            incident_id=incident.pk, by=by, severity=Severity.III
        ),
        IncidentAction.REVISE_CASUALTIES: lambda: services.incident_revise_casualties(
            incident_id=incident.pk, by=by, injured=2
        ),
        IncidentAction.NOTE: lambda: services.incident_add_note(
            incident_id=incident.pk, by=by, text="已联系水务"
        ),
    }
    return calls[action]()


ALLOWED = [(a, s) for a, rule in TRANSITIONS.items() for s in sorted(rule.sources)]
REFUSED = [(a, s) for a, rule in TRANSITIONS.items() for s in sorted(set(S.values) - rule.sources)]


# --- The table -----------------------------------------------------------------------------


def test_the_table_follows_the_design_state_machine() -> None:
    moves = {a: (sorted(r.sources), r.target) for a, r in TRANSITIONS.items() if r.target}

    assert moves == {
        IncidentAction.ACCEPT: (["reported"], "accepted"),
        IncidentAction.REJECT: (["reported"], "rejected"),
        IncidentAction.START: (["accepted"], "in_progress"),
        IncidentAction.RESOLVE: (["in_progress"], "resolved"),
        IncidentAction.CLOSE: (["resolved"], "closed"),
        IncidentAction.REOPEN: (["closed", "resolved"], "in_progress"),
        IncidentAction.MERGE: (["accepted", "in_progress", "reported"], "merged"),
    }
    assert allowed_actions(S.MERGED) == ["note"]
    assert allowed_actions(S.REPORTED) == [
        "accept",
        "reject",
        "merge",
        "classify",
        "casualties",
        "note",
    ]


def test_a_refusal_names_the_status_the_action_and_the_target() -> None:
    with pytest.raises(ApplicationError) as caught:
        transition_target(status=S.CLOSED, action=IncidentAction.ACCEPT)

    assert caught.value.code == "illegal_transition"
    assert caught.value.status == 409
    assert caught.value.extra == {"from": "closed", "action": "accept", "to": "accepted"}


# --- Every allowed transition --------------------------------------------------------------


@pytest.mark.parametrize(("action", "status"), ALLOWED, ids=[f"{a}-from-{s}" for a, s in ALLOWED])
def test_every_allowed_action_moves_the_incident_and_writes_one_timeline_row(
    action: IncidentAction, status: str, operator: User
) -> None:
    # given
    incident = make_incident(status)
    target = TRANSITIONS[action].target

    # when
    perform(action, incident, operator)

    # then
    incident.refresh_from_db()
    assert incident.status == (target or status)
    events = list(IncidentEvent.objects.filter(incident=incident))
    assert len(events) == 1
    event = events[0]
    assert event.kind == EVENT_KIND[action]
    assert event.actor == operator
    assert event.public == (action in PUBLIC_ACTIONS)
    if target:
        assert event.data["from"] == status
        assert event.data["to"] == target


# --- Every refusal -------------------------------------------------------------------------


@pytest.mark.parametrize(("action", "status"), REFUSED, ids=[f"{a}-from-{s}" for a, s in REFUSED])
def test_every_illegal_action_is_refused_and_changes_nothing(
    action: IncidentAction, status: str, operator: User
) -> None:
    # given
    incident = make_incident(status)
    before = Incident.objects.filter(pk=incident.pk).values().get()

    # when
    with pytest.raises(ApplicationError) as caught:
        perform(action, incident, operator)

    # then
    assert caught.value.code == "illegal_transition"
    assert caught.value.status == 409
    assert caught.value.extra["from"] == status
    assert caught.value.extra["action"] == str(action)
    assert Incident.objects.filter(pk=incident.pk).values().get() == before
    assert not IncidentEvent.objects.filter(incident=incident).exists()


def test_an_unknown_incident_is_not_found(operator: User) -> None:
    with pytest.raises(ApplicationError) as caught:
        services.incident_accept(incident_id=987654321, by=operator)

    assert caught.value.code == "incident_not_found"
    assert caught.value.status == 404


# --- What each transition writes -----------------------------------------------------------


def _update_columns(queries: list[dict[str, Any]]) -> set[str]:
    """The columns set by the UPDATEs of incidents_incident among ``queries``."""
    columns: set[str] = set()
    for query in queries:
        sql = query["sql"]
        if sql.startswith('UPDATE "incidents_incident"'):
            set_clause = sql.split(" SET ", 1)[1].split(" WHERE ", 1)[0]
            columns |= set(re.findall(r'"(\w+)" = ', set_clause))
    return columns


def test_accept_writes_only_the_changed_columns(operator: User) -> None:
    incident = make_incident(S.REPORTED)

    with CaptureQueriesContext(connection) as ctx:
        services.incident_accept(incident_id=incident.pk, by=operator)

    assert _update_columns(ctx.captured_queries) == {"status", "accepted_at", "updated_at"}


def test_accept_with_a_classification_writes_those_columns_too(operator: User) -> None:
    # given
    incident = make_incident(S.REPORTED, severity=Severity.IV)
    other = CategoryFactory()

    # when
    with CaptureQueriesContext(connection) as ctx:
        services.incident_accept(
            incident_id=incident.pk,
            by=operator,
            category=other,
            severity=Severity.IV,  # unchanged: not written, not in the timeline
            loop="medium",
        )

    # then
    assert _update_columns(ctx.captured_queries) == {
        "status",
        "accepted_at",
        "category_id",
        "loop",
        "updated_at",
    }
    event = IncidentEvent.objects.get(incident=incident)
    assert event.data["changes"] == {
        "category": {"old": incident.category.code, "new": other.code},
        "loop": {"old": "small", "new": "medium"},
    }
    incident.refresh_from_db()
    assert incident.accepted_at is not None
    assert incident.category == other


def test_accept_takes_the_suggested_severity_of_deep_water(operator: User) -> None:
    # given a 城市内涝 incident with 45 cm of water, unclassified
    incident = make_incident(
        S.REPORTED, category=WaterloggingCategoryFactory(), extra={"waterlogging_depth_cm": 45}
    )

    # when
    services.incident_accept(incident_id=incident.pk, by=operator)

    # then
    incident.refresh_from_db()
    assert incident.severity == Severity.III
    event = IncidentEvent.objects.get(incident=incident)
    assert event.data["severity_suggested"] is True
    assert event.data["changes"]["severity"] == {"old": "unclassified", "new": "III"}


def test_an_explicit_severity_beats_the_suggestion(operator: User) -> None:
    incident = make_incident(
        S.REPORTED, category=WaterloggingCategoryFactory(), extra={"waterlogging_depth_cm": 45}
    )

    services.incident_accept(incident_id=incident.pk, by=operator, severity=Severity.IV)

    incident.refresh_from_db()
    assert incident.severity == Severity.IV


def test_reject_keeps_the_reason_for_the_citizen(operator: User) -> None:
    incident = make_incident(S.REPORTED)

    services.incident_reject(
        incident_id=incident.pk, by=operator, reason="  非应急事项，请拨12345 "
    )

    incident.refresh_from_db()
    assert incident.status == S.REJECTED
    assert incident.rejection_reason == "非应急事项，请拨12345"
    event = IncidentEvent.objects.get(incident=incident)
    assert event.public
    assert event.data["reason"] == "非应急事项，请拨12345"


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda i, u: services.incident_reject(incident_id=i, by=u, reason="  "), "reason"),
        (lambda i, u: services.incident_resolve(incident_id=i, by=u, resolution=""), "resolution"),
        (lambda i, u: services.incident_reopen(incident_id=i, by=u, reason=""), "reason"),
        (lambda i, u: services.incident_add_note(incident_id=i, by=u, text=""), "text"),
        (lambda i, u: services.incident_classify(incident_id=i, by=u, severity="V"), "severity"),
        (lambda i, u: services.incident_accept(incident_id=i, by=u, loop="huge"), "loop"),
        (
            lambda i, u: services.incident_revise_casualties(incident_id=i, by=u, deaths=-1),
            "deaths",
        ),
        (
            lambda i, u: services.incident_revise_casualties(incident_id=i, by=u),
            "non_field_errors",
        ),
    ],
)
def test_bad_input_is_refused_with_field_errors(call: Any, field: str, operator: User) -> None:
    incident = make_incident(S.REPORTED)

    with pytest.raises(ApplicationError) as caught:
        call(incident.pk, operator)

    assert caught.value.code == "invalid"
    assert field in caught.value.extra["fields"]
    assert not IncidentEvent.objects.filter(incident=incident).exists()


def test_start_keeps_the_first_start_time_after_a_reopen(operator: User) -> None:
    # given an incident started, resolved, closed and reopened
    incident = make_incident(S.ACCEPTED)
    services.incident_start(incident_id=incident.pk, by=operator)
    first_start = Incident.objects.get(pk=incident.pk).in_progress_at
    services.incident_resolve(incident_id=incident.pk, by=operator, resolution="已处置")
    services.incident_close(incident_id=incident.pk, by=operator, note="核查通过")

    # when
    services.incident_reopen(incident_id=incident.pk, by=operator, reason="复查仍有隐患")

    # then
    incident.refresh_from_db()
    assert incident.status == S.IN_PROGRESS
    assert incident.in_progress_at == first_start
    assert incident.resolution == ""
    assert incident.resolved_at is None
    assert incident.closed_at is None
    reopened = IncidentEvent.objects.get(incident=incident, kind=IncidentEvent.Kind.REOPENED)
    assert reopened.data["previous_resolution"] == "已处置"
    assert reopened.data["previous_closed_at"] is not None
    closed = IncidentEvent.objects.get(incident=incident, kind=IncidentEvent.Kind.CLOSED)
    assert closed.data["note"] == "核查通过"
    kinds = list(IncidentEvent.objects.filter(incident=incident).values_list("kind", flat=True))
    assert kinds == ["in_progress", "resolved", "closed", "reopened"]


def test_resolve_records_the_result_and_time(operator: User) -> None:
    incident = make_incident(S.IN_PROGRESS)

    services.incident_resolve(incident_id=incident.pk, by=operator, resolution="抽排完毕，道路通行")

    incident.refresh_from_db()
    assert incident.resolution == "抽排完毕，道路通行"
    assert incident.resolved_at is not None


# --- Classification and casualties ---------------------------------------------------------


def test_classify_records_old_and_new_values(operator: User) -> None:
    incident = make_incident(S.IN_PROGRESS, severity=Severity.IV)

    services.incident_classify(
        incident_id=incident.pk, by=operator, severity=Severity.II, loop="large"
    )

    event = IncidentEvent.objects.get(incident=incident)
    assert event.kind == IncidentEvent.Kind.CLASSIFIED
    assert event.data == {
        "changes": {
            "severity": {"old": "IV", "new": "II"},
            "loop": {"old": "small", "new": "large"},
        }
    }
    assert not event.public


def test_classify_to_the_same_values_writes_nothing(operator: User) -> None:
    incident = make_incident(S.ACCEPTED, severity=Severity.IV)
    stamp = incident.updated_at

    services.incident_classify(incident_id=incident.pk, by=operator, severity=Severity.IV)

    assert not IncidentEvent.objects.filter(incident=incident).exists()
    assert Incident.objects.get(pk=incident.pk).updated_at == stamp


def test_every_casualty_revision_is_kept_as_a_time_series(operator: User) -> None:
    # given
    incident = make_incident(S.IN_PROGRESS)

    # when the figures are revised three times
    services.incident_revise_casualties(
        incident_id=incident.pk, by=operator, missing=5, note="初报"
    )
    services.incident_revise_casualties(
        incident_id=incident.pk, by=operator, deaths=1, missing=4, note="搜救中"
    )
    services.incident_revise_casualties(incident_id=incident.pk, by=operator, missing=4)

    # then the incident holds the latest and the timeline every revision
    incident.refresh_from_db()
    assert (incident.deaths, incident.injured, incident.missing, incident.trapped) == (1, 0, 4, 0)
    series = list(
        IncidentEvent.objects.filter(
            incident=incident, kind=IncidentEvent.Kind.CASUALTIES_REVISED
        ).values_list("data", flat=True)
    )
    assert [(d["deaths"], d["missing"]) for d in series] == [(0, 5), (1, 4), (1, 4)]
    assert series[1]["previous"] == {"deaths": 0, "injured": 0, "missing": 5, "trapped": 0}
    assert series[0]["note"] == "初报"


def test_a_casualty_revision_writes_only_the_changed_figures(operator: User) -> None:
    incident = make_incident(S.IN_PROGRESS, injured=3)

    with CaptureQueriesContext(connection) as ctx:
        services.incident_revise_casualties(
            incident_id=incident.pk, by=operator, injured=3, trapped=2
        )

    assert _update_columns(ctx.captured_queries) == {"trapped", "updated_at"}


def test_a_note_can_be_public(operator: User) -> None:
    incident = make_incident(S.CLOSED)

    event = services.incident_add_note(
        incident_id=incident.pk, by=operator, text="感谢市民反映", public=True
    )

    assert event.public
    assert event.data == {"text": "感谢市民反映"}


# --- Merge ---------------------------------------------------------------------------------


def test_merge_links_the_duplicate_and_tells_the_target(operator: User) -> None:
    # given
    duplicate = make_incident(S.REPORTED)
    target = make_incident(S.IN_PROGRESS, region=duplicate.region)
    target_stamp = target.updated_at

    # when
    services.incident_merge(incident_id=duplicate.pk, into_id=target.pk, by=operator)

    # then
    duplicate.refresh_from_db()
    assert duplicate.status == S.MERGED
    assert duplicate.merged_into == target
    merged = IncidentEvent.objects.get(incident=duplicate)
    assert merged.data["into_id"] == target.pk
    told = IncidentEvent.objects.get(incident=target)
    assert told.kind == IncidentEvent.Kind.DUPLICATE_MERGED
    assert told.data == {"incident_id": duplicate.pk, "number": duplicate.number}
    assert Incident.objects.get(pk=target.pk).updated_at > target_stamp


@pytest.mark.parametrize(
    ("target_status", "reason", "http"),
    [
        (S.CLOSED, "target_not_open", 409),
        (S.REJECTED, "target_not_open", 409),
        (S.MERGED, "target_not_open", 409),
    ],
)
def test_merge_into_a_closed_or_merged_incident_is_refused(
    target_status: str, reason: str, http: int, operator: User
) -> None:
    duplicate = make_incident(S.REPORTED)
    target = make_incident(target_status)

    with pytest.raises(ApplicationError) as caught:
        services.incident_merge(incident_id=duplicate.pk, into_id=target.pk, by=operator)

    assert caught.value.code == "merge_target_invalid"
    assert caught.value.extra["reason"] == reason
    assert caught.value.status == http
    assert Incident.objects.get(pk=duplicate.pk).status == S.REPORTED


def test_merge_into_itself_is_refused(operator: User) -> None:
    incident = make_incident(S.REPORTED)

    with pytest.raises(ApplicationError) as caught:
        services.incident_merge(incident_id=incident.pk, into_id=incident.pk, by=operator)

    assert caught.value.code == "merge_target_invalid"
    assert caught.value.extra["reason"] == "same_incident"
    assert caught.value.status == 400


def test_a_drill_is_never_merged_into_a_real_incident(operator: User) -> None:
    drill = make_incident(S.REPORTED, is_drill=True)
    real = make_incident(S.ACCEPTED)

    with pytest.raises(ApplicationError) as caught:
        services.incident_merge(incident_id=drill.pk, into_id=real.pk, by=operator)

    assert caught.value.extra["reason"] == "drill_mismatch"


# --- Public status of linked reports follows the incident ----------------------------------


def _report(incident: Incident | None, status: str = ReportStatus.ACCEPTED) -> Report:
    category = incident.category if incident else CategoryFactory()
    region = incident.region if incident else IncidentFactory().region
    return Report.objects.create(
        token=secrets.token_urlsafe(32),
        channel=Report.Channel.APP,
        category=category,
        lat=34.27,
        lng=108.8,
        region=region,
        status=status,
        incident=incident,
    )


def test_a_reports_public_status_follows_its_incident_through_the_transitions(
    operator: User,
) -> None:
    # given a report linked to a reported incident
    incident = make_incident(S.REPORTED)
    report = _report(incident)

    def seen() -> str:
        return public_status_for(Report.objects.select_related("incident").get(pk=report.pk))

    # then the citizen sees each step without the report being written
    assert seen() == PublicStatus.RECEIVED
    services.incident_accept(incident_id=incident.pk, by=operator)
    assert seen() == PublicStatus.RECEIVED
    services.incident_start(incident_id=incident.pk, by=operator)
    assert seen() == PublicStatus.IN_PROGRESS
    services.incident_resolve(incident_id=incident.pk, by=operator, resolution="已处置")
    assert seen() == PublicStatus.RESOLVED
    services.incident_close(incident_id=incident.pk, by=operator)
    assert seen() == PublicStatus.CLOSED
    services.incident_reopen(incident_id=incident.pk, by=operator, reason="复查不合格")
    assert seen() == PublicStatus.IN_PROGRESS
    assert Report.objects.get(pk=report.pk).updated_at == report.updated_at


def test_a_report_on_a_rejected_incident_reads_rejected(operator: User) -> None:
    incident = make_incident(S.REPORTED)
    report = _report(incident, ReportStatus.DUPLICATE)

    services.incident_reject(incident_id=incident.pk, by=operator, reason="误报")

    report.refresh_from_db()
    assert public_status_for(report) == PublicStatus.REJECTED


def test_a_report_on_a_merged_incident_follows_the_merge_chain(operator: User) -> None:
    # given A merged into B, B merged into C, C in progress
    c = make_incident(S.IN_PROGRESS)
    b = make_incident(S.ACCEPTED, region=c.region)
    a = make_incident(S.REPORTED, region=c.region)
    report = _report(a)
    services.incident_merge(incident_id=a.pk, into_id=b.pk, by=operator)
    services.incident_merge(incident_id=b.pk, into_id=c.pk, by=operator)

    # then
    report.refresh_from_db()
    assert public_status_for(report) == PublicStatus.IN_PROGRESS
    services.incident_resolve(incident_id=c.pk, by=operator, resolution="已处置")
    report.refresh_from_db()
    assert public_status_for(report) == PublicStatus.RESOLVED


def test_submitted_and_rejected_reports_need_no_incident() -> None:
    assert public_status_for(_report(None, ReportStatus.SUBMITTED)) == PublicStatus.RECEIVED
    assert public_status_for(_report(None, ReportStatus.REJECTED)) == PublicStatus.REJECTED
