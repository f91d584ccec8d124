"""How the app talks to PostgreSQL beyond Django's DATABASES setting: the psycopg adapters and the ``any``
lookup installed at start-up (``config.apps``).

Django 5.2 inserts many rows as ``UNNEST`` of one text array per column, and psycopg escapes each array
element with ``re.sub(rb'(["\\])', rb"\\\1", ...)``. On Python 3.11 a template with a group reference is
expanded in Python once per match, and JSON is mostly quotes: a worker's batch spent ~15% of its CPU
escaping the realtime events' and messages' JSON (42 µs for a 200-byte document; two ``bytes.replace``
calls take under 1 µs). The escaping rule itself is unchanged (PostgreSQL's array input syntax: a
backslash before every ``"`` and ``\\`` inside a quoted element).
"""
import psycopg
from django.db.models import Field, ForeignObject, lookups
from django.db.models.fields.related_lookups import RelatedIn
from psycopg.adapt import Buffer
from psycopg.types import array


class _QuoteAndBackslashEscaper:
    """Stands in for ``ListDumper._re_esc``, the one compiled pattern psycopg calls ``sub`` on."""

    @staticmethod
    def sub(_template: bytes, element: Buffer) -> bytes:
        return bytes(element).replace(b"\\", b"\\\\").replace(b'"', b'\\"')


class ListDumper(array.ListDumper):
    """psycopg's text-format list dumper with the element escaping done by ``bytes.replace``."""

    _re_esc = _QuoteAndBackslashEscaper()


def install_psycopg_adapters() -> None:
    """Register the dumpers on psycopg's global map, which Django copies for each new connection (so
    this must run before the first connection: ``ProjectConfig.ready``)."""
    psycopg.adapters.register_dumper(list, ListDumper)


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
