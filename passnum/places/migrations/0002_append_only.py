from django.db import migrations

from passnum.common.db import drop_append_only_triggers, install_append_only_triggers

TABLES = ["places_qualificationlog"]


def forwards(apps, schema_editor):
    for table in TABLES:
        install_append_only_triggers(schema_editor, table)


def backwards(apps, schema_editor):
    for table in TABLES:
        drop_append_only_triggers(schema_editor, table)


class Migration(migrations.Migration):
    dependencies = [("places", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
