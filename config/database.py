"""How the app talks to PostgreSQL beyond Django's DATABASES setting: the psycopg adapters installed at
start-up (``config.apps``).

Django 5.2 inserts many rows as ``UNNEST`` of one text array per column, and psycopg escapes each array
element with ``re.sub(rb'(["\\])', rb"\\\1", ...)``. On Python 3.11 a template with a group reference is
expanded in Python once per match, and JSON is mostly quotes: a worker's batch spent ~15% of its CPU
escaping the realtime events' and messages' JSON (42 µs for a 200-byte document; two ``bytes.replace``
calls take under 1 µs). The escaping rule itself is unchanged (PostgreSQL's array input syntax: a
backslash before every ``"`` and ``\\`` inside a quoted element).
"""
import psycopg
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
