"""One UPDATE statement for many rows, each with its own values: what a drain's batch writes back.

Django's ``bulk_update`` builds a ``CASE WHEN id = ... THEN ...`` per row and field; compiling it took
~150 ms for 50 conversations (most of a batch's time). On PostgreSQL this joins the rows to ``UNNEST`` of one
array per column instead (as Django's own ``bulk_create`` inserts): one short statement text whatever the
number of rows, which psycopg splits once per process, where a ``VALUES`` list of 500 rows x 5 placeholders
was split and quoted into anew each time. Other databases (the embedded SQLite) keep ``bulk_update``.
"""
from django.db import connection
from django.db.models import Model


def update_rows(*, objects: list[Model], fields: list[str]) -> None:
    """Write ``fields`` of ``objects`` (one model) as they are in memory, by primary key."""
    if not objects:
        return
    model = type(objects[0])
    if connection.vendor != "postgresql":
        model.objects.bulk_update(objects, fields)
        return
    meta = model._meta
    columns = [meta.pk] + [meta.get_field(name) for name in fields]
    quote = connection.ops.quote_name
    arrays = ", ".join(f"%s::{column.db_type(connection)}[]" for column in columns)
    params = [[column.get_db_prep_save(getattr(obj, column.attname), connection) for obj in objects] for column in columns]
    assignments = ", ".join(f"{quote(column.column)} = v.{quote(column.column)}" for column in columns[1:])
    names = ", ".join(quote(column.column) for column in columns)
    table = quote(meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {assignments} FROM UNNEST({arrays}) AS v({names}) "
            f"WHERE {table}.{quote(meta.pk.column)} = v.{quote(meta.pk.column)}",
            params,
        )
