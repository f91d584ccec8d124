"""Drop the ``varchar_pattern_ops`` copy of the phone_number_id index that Django adds on PostgreSQL for an
indexed CharField. It serves ``LIKE 'prefix%'`` only, and nothing asks that (the admin searches with
``icontains``; routing and health compare whole ids, which the plain index serves), yet every stored delivery
wrote an entry into it twice: at the INSERT, and at the processed-state UPDATE (not HOT: ``state`` is indexed).

Dropped ``CONCURRENTLY`` (outside a transaction) so webhook INSERTs never wait on it. Django does not track this
index in its migration state: a later AlterField of the column would create it again (until migration 0006,
which makes the state say what is there).
"""

from django.db import migrations

LIKE_INDEX = "webhooks_webhookevent_phone_number_id_a6253944_like"


def drop_like_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{LIKE_INDEX}"')


def create_like_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{LIKE_INDEX}" '
            'ON "webhooks_webhookevent" ("phone_number_id" varchar_pattern_ops)'
        )


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("webhooks", "0004_raw_body_only"),
    ]

    operations = [
        migrations.RunPython(drop_like_index, create_like_index, elidable=False),
    ]
