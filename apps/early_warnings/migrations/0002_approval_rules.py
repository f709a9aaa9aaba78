"""Seed the approval rule table (docs/early-warnings.md, "Approval rule").

The rows are a copy of ``apps.early_warnings.approval.DEFAULT_RULES`` at the time of
writing (a migration must not import code that may change); existing rows are kept.
"""

from django.db import migrations

RULES = {
    ("red", "new_area"): ("commander", "new_area"),
    ("red", "new_town"): ("commander", "new_area"),
    ("red", "street"): ("commander", "new_area"),
    ("red", "unit"): ("commander", "new_area"),
    ("orange", "new_area"): ("commander", "new_area"),
    ("orange", "new_town"): ("commander", "new_town"),
    ("orange", "street"): ("commander", "new_town"),
    ("orange", "unit"): ("commander", "new_town"),
    ("yellow", "new_area"): ("commander", "new_area"),
    ("yellow", "new_town"): ("commander", "new_town"),
    ("yellow", "street"): ("operator", "new_town"),
    ("yellow", "unit"): ("operator", "new_town"),
    ("blue", "new_area"): ("operator", "new_area"),
    ("blue", "new_town"): ("operator", "new_town"),
    ("blue", "street"): ("operator", "new_town"),
    ("blue", "unit"): ("operator", "street"),
}


def seed(apps, schema_editor):
    ApprovalRule = apps.get_model("early_warnings", "ApprovalRule")
    for (level, target_level), (role, approver_level) in RULES.items():
        ApprovalRule.objects.get_or_create(
            level=level,
            target_level=target_level,
            defaults={"approver_role": role, "approver_level": approver_level},
        )


class Migration(migrations.Migration):
    dependencies = [("early_warnings", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
