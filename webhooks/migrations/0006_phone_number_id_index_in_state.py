"""Make Django's migration state say what migration 0005 left in the database: phone_number_id has a plain
btree index and no ``varchar_pattern_ops`` copy. The field's ``db_index=True`` becomes an explicit
``Index`` (which never gets a ``_like`` twin), so a later AlterField of the column no longer creates the copy
again. In the database the existing index is only renamed: nothing is rebuilt on a large table.
"""

from django.db import migrations, models

NEW_NAME = "webhook_event_number"
COLUMN = "phone_number_id"


def _plain_index_on_column(schema_editor, table: str) -> str | None:
    """The name Django gave the one-column btree index on phone_number_id (not the pattern-ops one), if there is
    one still under it."""
    with schema_editor.connection.cursor() as cursor:
        constraints = schema_editor.connection.introspection.get_constraints(cursor, table)
    for name, info in constraints.items():
        if (
            info["index"]
            and not info["unique"]
            and info["columns"] == [COLUMN]
            and name != NEW_NAME
            and not name.endswith("_like")
        ):
            return name
    return None


def _rename(schema_editor, table: str, old: str, new: str) -> None:
    quote = schema_editor.quote_name
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER INDEX {quote(old)} RENAME TO {quote(new)}")
    else:  # SQLite cannot rename an index
        schema_editor.execute(f"DROP INDEX {quote(old)}")
        schema_editor.execute(f"CREATE INDEX {quote(new)} ON {quote(table)} ({quote(COLUMN)})")


def name_it(apps, schema_editor):
    table = apps.get_model("webhooks", "WebhookEvent")._meta.db_table
    old = _plain_index_on_column(schema_editor, table)
    if old is not None:
        _rename(schema_editor, table, old, NEW_NAME)


def unname_it(apps, schema_editor):
    table = apps.get_model("webhooks", "WebhookEvent")._meta.db_table
    # The name Django gives a db_index=True column's index.
    _rename(schema_editor, table, NEW_NAME, schema_editor._create_index_name(table, [COLUMN], suffix=""))


class Migration(migrations.Migration):
    dependencies = [
        ("webhooks", "0005_drop_phone_number_id_like_index"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="webhookevent",
                    name="phone_number_id",
                    field=models.CharField(blank=True, default="", max_length=64),
                ),
                migrations.AddIndex(
                    model_name="webhookevent",
                    index=models.Index(fields=["phone_number_id"], name=NEW_NAME),
                ),
            ],
            database_operations=[migrations.RunPython(name_it, unname_it, elidable=False)],
        ),
    ]
