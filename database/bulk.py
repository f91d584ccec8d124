"""The database's fast path, fenced here: what the drains' rounds need that Django's ORM does slowly, and why.

- ``insert_rows``: ``bulk_create`` as one ``INSERT ... SELECT * FROM UNNEST`` of one binary array parameter per
  column. ``bulk_create`` prepares every value through the compiler and psycopg quotes each array into the text
  (Django binds client-side; escaping JSON elements alone was ~15 % of a worker's round): a message row cost
  ~50 µs, here ~11 µs; a round of 500 messages and their events, 27 -> 5.5 ms of CPU.
- ``update_rows``: ``bulk_update`` joins the rows to ``UNNEST`` instead of a ``CASE WHEN`` per row and field
  (compiling that took ~150 ms for 50 conversations).
- ``field__any=values``: ``= ANY(%s::type[])`` with one array instead of ``IN`` with 500 placeholders
  (-7 % of a drain's instructions per event with ``update_rows``).

Everything else, and every other database (the embedded SQLite), goes through the ORM as usual. Installed at
start-up by ``config.apps``.
"""

import json
import uuid
from datetime import date, datetime
from decimal import Decimal

import psycopg
from django.db import connection
from django.db.models import DateField, Field, ForeignObject, JSONField, Model, lookups
from django.db.models.expressions import DatabaseDefault
from django.db.models.fields import NOT_PROVIDED, AutoFieldMixin
from django.db.models.fields.related_lookups import RelatedIn


class AnyOf(lookups.In):
    """``field__any=values``: ``field = ANY(%s::type[])`` on PostgreSQL, one array parameter; elsewhere ``IN``.

    A drain's round looks up, locks and updates up to 500 rows by id or wamid. As ``IN (%s, %s, ...)`` each of
    those queries had 500 placeholders: psycopg split the long text anew each time (its cache keeps short ones
    only) and quoted each value into it, and PostgreSQL parsed and planned 500 literals. The ``ANY`` form is one
    short text per field, split once per process, with the values in one array (bench ``--phases instructions``:
    with ``UNNEST`` in ``update_rows``, -7 % of a drain's instructions per event, and less PostgreSQL CPU).
    """

    lookup_name = "any"

    def as_postgresql(self, compiler, connection):
        if not self.rhs_is_direct_value():  # a subquery: IN as usual
            return self.as_sql(compiler, connection)
        lhs, lhs_params = self.process_lhs(compiler, connection)
        field = self.lhs.output_field
        values = [
            field.get_db_prep_value(value, connection, prepared=True)
            for value in dict.fromkeys(self.rhs)  # in order, once each (as IN's OrderedSet)
            if value is not None
        ]
        return f"{lhs} = ANY(%s::{field.db_type(connection)}[])", (*lhs_params, values)


class RelatedAnyOf(AnyOf, RelatedIn):
    """``any`` on a foreign key (``contact_id__any=ids``): Django looks up relations' lookups apart from fields'."""


def install_any_lookup() -> None:
    Field.register_lookup(AnyOf)
    ForeignObject.register_lookup(RelatedAnyOf)


# --- many rows in one statement ------------------------------------------------------------------------------
#
# A drain's round stores up to 500 messages and as many realtime events, and writes back as many conversations.
# Django's ``bulk_create`` (and ``bulk_update``) prepare every value through the compiler, a chain of calls per
# row and field (~50 µs a message row), and psycopg then quotes each array into the statement's text (Django
# binds client-side). Here each column's values are read once into a list, checked by type, and sent as one
# binary array parameter of a server-bound statement: ~11 µs a message row (500 rows: 27 -> 5.5 ms of CPU).
# Values of a type the check does not expect (a Decimal in a CharField, an int in a TextField...) go through
# the field's ``get_db_prep_save`` as Django would.

_BINARY_TYPES = {
    "CharField": str,
    "TextField": str,
    "SlugField": str,
    "EmailField": str,
    "URLField": str,
    "IntegerField": int,
    "BigIntegerField": int,
    "SmallIntegerField": int,
    "PositiveIntegerField": int,
    "PositiveBigIntegerField": int,
    "PositiveSmallIntegerField": int,
    "AutoField": int,
    "BigAutoField": int,
    "SmallAutoField": int,
    "BooleanField": bool,
    "UUIDField": uuid.UUID,
    "DecimalField": Decimal,
}


def _sendable(internal_type: str, values: list) -> bool:
    """Whether psycopg sends every one of ``values`` as the column wants it. Subclasses count (a choices member
    is a str or an int); a bool is not an int here, nor a datetime a date, and a datetime must know its time
    zone. Checked per distinct type, not per value (a round's column holds one or two types)."""
    kinds = set(map(type, values))
    kinds.discard(type(None))
    if internal_type == "DateTimeField":
        return all(issubclass(kind, datetime) for kind in kinds) and all(
            value is None or value.tzinfo is not None for value in values
        )
    if internal_type == "DateField":
        return all(issubclass(kind, date) and not issubclass(kind, datetime) for kind in kinds)
    expected = _BINARY_TYPES.get(internal_type)
    return expected is not None and all(
        issubclass(kind, expected) and (expected is bool or not issubclass(kind, bool)) for kind in kinds
    )


def _needs_pre_save(field: Field) -> bool:
    """Whether ``save()`` would take the value from ``field.pre_save`` rather than the attribute: auto_now(_add)
    dates, files, and any field that overrides ``pre_save`` for other reasons."""
    if isinstance(field, DateField):  # DateTimeField too: its pre_save only matters with auto_now(_add)
        return field.auto_now or field.auto_now_add
    return type(field).pre_save is not Field.pre_save


def _column(field: Field, objects: list[Model], *, adding: bool) -> list:
    """The values of ``field`` of ``objects`` as psycopg dumps them in a binary array."""
    if adding and _needs_pre_save(field):
        values = [field.pre_save(obj, True) for obj in objects]
    else:
        values = [getattr(obj, field.attname) for obj in objects]
    if isinstance(field, JSONField):  # None is SQL NULL, as Django stores it
        return [None if value is None else json.dumps(value, cls=field.encoder) for value in values]
    if _sendable((field.target_field if field.is_relation else field).get_internal_type(), values):
        return values
    return [field.get_db_prep_save(value, connection) for value in values]


def _unnest(fields: list[Field]) -> str:
    """``UNNEST`` of one binary array parameter per field. Each cast without length: varchar[] rather than
    varchar(300)[] (the column checks the length), as Django does."""
    return "UNNEST({})".format(", ".join(f"%b::{field.db_type(connection).split('(')[0]}[]" for field in fields))


def _server_bound_cursor():
    """A cursor on Django's connection that binds parameters server-side (arrays sent in binary, not quoted
    into the text), wrapped as ``connection.cursor()``'s are: execute wrappers, query logging, Django's
    database exceptions (an ``IntegrityError`` callers catch)."""
    connection.ensure_connection()
    with connection.wrap_database_errors:
        return connection._prepare_cursor(psycopg.Cursor(connection.connection))


def _plain_new_rows(model: type[Model], objects: list[Model]) -> bool:
    meta = model._meta
    if meta.parents or not isinstance(meta.pk, AutoFieldMixin) or any(f.generated for f in meta.concrete_fields):
        return False
    # A database default is the database's to fill only where a row holds no value of its own: a field with a
    # Python default too holds that value (as save() would send it), so such rows stay on the fast path.
    database_defaulted = [f.attname for f in meta.concrete_fields if f.db_default is not NOT_PROVIDED]
    return all(
        type(obj) is model
        and obj.pk is None
        and not any(isinstance(getattr(obj, name), DatabaseDefault) for name in database_defaulted)
        for obj in objects
    )


def insert_rows(*, objects: list[Model], ignore_conflicts: bool = False) -> list[Model]:
    """``bulk_create(objects)`` of new rows of one model: on PostgreSQL one ``INSERT ... SELECT * FROM UNNEST``
    of one binary array per column, ``RETURNING`` the ids it sets on ``objects`` (none with
    ``ignore_conflicts``: ``ON CONFLICT DO NOTHING``, as ``bulk_create`` does). Anything else (another
    database, a model with parents or generated fields, rows with a primary key or leaving a field to its
    database default) goes to ``bulk_create``."""
    if not objects:
        return objects
    model = type(objects[0])
    if connection.vendor != "postgresql" or not _plain_new_rows(model, objects):
        return model.objects.bulk_create(objects, ignore_conflicts=ignore_conflicts)
    meta = model._meta
    fields = [field for field in meta.concrete_fields if not field.primary_key]
    foreign_keys = [field for field in fields if field.many_to_one]
    for obj in objects:
        # What bulk_create checks, only where it can matter: a related object assigned before it was saved.
        if any(getattr(obj, fk.attname) is None and fk.is_cached(obj) for fk in foreign_keys):
            obj._prepare_related_fields_for_save(operation_name="insert_rows")
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    ending = "ON CONFLICT DO NOTHING" if ignore_conflicts else f"RETURNING {quote(meta.pk.column)}"
    with _server_bound_cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(meta.db_table)} ({columns}) SELECT * FROM {_unnest(fields)} {ending}",
            [_column(field, objects, adding=True) for field in fields],
        )
        if not ignore_conflicts:
            for obj, (pk,) in zip(objects, cursor.fetchall(), strict=True):
                obj.pk = pk
    for obj in objects:
        obj._state.adding = False
        obj._state.db = connection.alias
    return objects


def update_rows(*, objects: list[Model], fields: list[str]) -> None:
    """Write ``fields`` of ``objects`` (saved rows of one model) as they are in memory, by primary key.

    Django's ``bulk_update`` builds a ``CASE WHEN id = ... THEN ...`` per row and field; compiling it took ~150 ms
    for 50 conversations. On PostgreSQL this joins the rows to ``UNNEST`` of one array per column instead: one
    short statement whatever the number of rows. Other databases (the embedded SQLite) keep ``bulk_update``."""
    if not objects:
        return
    model = type(objects[0])
    if connection.vendor != "postgresql":
        model.objects.bulk_update(objects, fields)
        return
    meta = model._meta
    columns = [meta.pk] + [meta.get_field(name) for name in fields]
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(column.column)} = v.{quote(column.column)}" for column in columns[1:])
    names = ", ".join(quote(column.column) for column in columns)
    table = quote(meta.db_table)
    with _server_bound_cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {assignments} FROM {_unnest(columns)} AS v({names}) "
            f"WHERE {table}.{quote(meta.pk.column)} = v.{quote(meta.pk.column)}",
            [_column(column, objects, adding=False) for column in columns],
        )
