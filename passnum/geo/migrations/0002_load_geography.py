from django.db import migrations


def load(apps, schema_editor):
    # Imported here so the loader code in use is today's, fed with the historical models.
    from passnum.geo.loader import load_geography

    load_geography(using=schema_editor.connection.alias, apps=apps)


class Migration(migrations.Migration):
    dependencies = [("geo", "0001_initial")]

    operations = [migrations.RunPython(load, migrations.RunPython.noop, elidable=False)]
