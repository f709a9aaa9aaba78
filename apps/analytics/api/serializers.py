"""Output shapes of the KPI API (the TypedDicts of ``apps.analytics.selectors``)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from apps.analytics.forms import GroupBy
from apps.sla.models import SlaKind


class KpiIntervalStatsOutput(serializers.Serializer):
    count = serializers.IntegerField(help_text=_("How many values were measured."))
    mean_s = serializers.FloatField(allow_null=True, help_text=_("Mean, in seconds."))
    median_s = serializers.FloatField(allow_null=True, help_text=_("Median, in seconds."))
    p90_s = serializers.FloatField(
        allow_null=True, help_text=_("90th percentile (continuous), in seconds.")
    )


class KpiIntervalsOutput(serializers.Serializer):
    """The six intervals; incident intervals are null in team groups."""

    acquire = KpiIntervalStatsOutput(
        allow_null=True, help_text=_("First report (or creation) → accepted (受理).")
    )
    dispatch = KpiIntervalStatsOutput(
        allow_null=True, help_text=_("Accepted → first team dispatched.")
    )
    respond = KpiIntervalStatsOutput(help_text=_("Task dispatched → accepted by the team (接单)."))
    arrive = KpiIntervalStatsOutput(help_text=_("Task dispatched → team on scene (到场)."))
    resolve = KpiIntervalStatsOutput(
        allow_null=True, help_text=_("Accepted → resolved (办结), the standing resolution.")
    )
    verify = KpiIntervalStatsOutput(allow_null=True, help_text=_("Resolved → closed (核查销号)."))


class KpiIncidentCountsOutput(serializers.Serializer):
    total = serializers.IntegerField()
    rejected = serializers.IntegerField()
    merged = serializers.IntegerField()
    reopened = serializers.IntegerField()


class KpiTaskCountsOutput(serializers.Serializer):
    total = serializers.IntegerField()
    declined = serializers.IntegerField()
    expired = serializers.IntegerField()
    cancelled = serializers.IntegerField()


class KpiSlaComplianceOutput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=SlaKind.choices)
    met = serializers.IntegerField(help_text=_("Stopped within the deadline."))
    breached = serializers.IntegerField(help_text=_("Late, or still running past the deadline."))
    pending = serializers.IntegerField(help_text=_("Still running within the deadline."))
    compliance_rate = serializers.FloatField(
        allow_null=True, help_text=_("met / (met + breached); null when both are 0.")
    )


class KpiGroupOutput(serializers.Serializer):
    key = serializers.CharField(
        help_text=_("Category code, team code, region code or period start (YYYY-MM-DD).")
    )
    label = serializers.CharField()
    incidents = KpiIncidentCountsOutput(allow_null=True)
    tasks = KpiTaskCountsOutput()
    intervals = KpiIntervalsOutput()
    sla = KpiSlaComplianceOutput(many=True)


class KpiRegionOutput(serializers.Serializer):
    code = serializers.CharField()
    name_zh = serializers.CharField()
    name_en = serializers.CharField()
    level = serializers.CharField()


class KpiReportOutput(serializers.Serializer):
    region = KpiRegionOutput(
        allow_null=True, help_text=_("The region asked for, when the caller sees all of it.")
    )
    date_from = serializers.DateField()
    date_to = serializers.DateField(help_text=_("Included."))
    group_by = serializers.ChoiceField(
        choices=[("", _("No grouping")), *GroupBy.choices], allow_blank=True
    )
    include_drills = serializers.BooleanField()
    timezone = serializers.CharField()
    generated_at = serializers.DateTimeField()
    total = KpiGroupOutput()
    groups = KpiGroupOutput(many=True)
