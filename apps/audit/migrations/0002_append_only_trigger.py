"""PostgreSQL refuses to change audit entries and to delete young ones, whoever asks.

The model refuses too, but only for code that goes through it; this trigger also holds
for a raw SQL statement or a mistaken bulk update. UPDATE is always refused; DELETE only
for rows younger than the 180-day retention floor (``apps.audit.services``), so pruning
works and nothing else does. TRUNCATE (test databases) fires no row trigger.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION audit_entry_guard() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        RAISE EXCEPTION 'audit entries are append-only (id %)', OLD.id;
    END IF;
    IF OLD."at" > now() - interval '180 days' THEN
        RAISE EXCEPTION 'audit entries are kept at least 180 days (id %)', OLD.id;
    END IF;
    RETURN OLD;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_entry_guard BEFORE UPDATE OR DELETE ON audit_auditentry
    FOR EACH ROW EXECUTE FUNCTION audit_entry_guard();
"""

DROP = """
DROP TRIGGER IF EXISTS audit_entry_guard ON audit_auditentry;
DROP FUNCTION IF EXISTS audit_entry_guard();
"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunPython(create, drop)]
