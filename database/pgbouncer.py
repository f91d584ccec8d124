"""PostgreSQL behind PgBouncer: what a pooler in transaction mode takes from the app, and what it says when it
refuses a statement. The settings are ``DATABASE_PGBOUNCER`` and ``DATABASE_PREPARED_STATEMENTS`` (base.py);
docs/pgbouncer.md is the operator's side.

With ``pool_mode = transaction`` each transaction of a client may run on another server connection, so nothing a
session keeps past its transaction may be relied on:

- Named cursors. ``QuerySet.iterator()``, and so Django's form choices (the admin's user page lists every
  permission that way), declare a ``WITH HOLD`` cursor and fetch from it in later transactions.
  ``DATABASE_PGBOUNCER=transaction`` sets ``DISABLE_SERVER_SIDE_CURSORS``: the rows come in one fetch instead.
- Named prepared statements. psycopg prepares one only on a cursor that binds server-side, when told to
  (``prepare=True``) or after ``prepare_threshold`` executions. Django binds client-side and sets the threshold
  to None, so by default nothing is prepared: ``database/bulk.py`` binds server-side but unnamed, which every
  PgBouncer passes. A ``?prepare_threshold=N`` on ``DATABASE_URL`` would prepare its statements; with
  ``DATABASE_PREPARED_STATEMENTS`` off (the default under ``DATABASE_PGBOUNCER=transaction``) base.py refuses
  that and the webhook's INSERT is not asked to prepare either. PgBouncer 1.21+ with ``max_prepared_statements``
  keeps prepared statements across its server connections: there they may stay on.
- Session settings. The app sets none that outlive a transaction: the drain's ``SET LOCAL`` ends with it, and
  there are no advisory locks, ``LISTEN`` or temporary tables. Django's ``SET TIME ZONE`` when it connects (only
  if the server's ``TimeZone`` differs from ``TIME_ZONE``) is a parameter PgBouncer tracks and sets again for
  each client, and every process of the app sets the same one.

When a pooler does lose a cursor or prepared statement, psycopg's error (``cursor ... does not exist``,
``prepared statement "_pg3_0" does not exist``/``already exists``) says nothing about the cause.
``explain_pooler_errors``, connected to ``connection_created``, makes every statement on the connection raise
``OperationalError`` instead, with the setting to change, and logs it: a database the app cannot use as configured,
so a webhook answers 503 (Meta retries), a drain is retried with its events kept pending, a page fails.
"""

import logging

from django.conf import settings
from django.db import OperationalError
from django.db.backends.signals import connection_created
from django.db.utils import DatabaseErrorWrapper
from psycopg import errors

logger = logging.getLogger(__name__)

PREPARED_STATEMENT_ERRORS = (errors.InvalidSqlStatementName, errors.DuplicatePreparedStatement)
CURSOR_ERRORS = (errors.InvalidCursorName, errors.DuplicateCursor)
POOLER_ERRORS = PREPARED_STATEMENT_ERRORS + CURSOR_ERRORS


def pooler_hint(exc: BaseException) -> str:
    """What to set, for a prepared statement or cursor the server does not have (or already has)."""
    if isinstance(exc, PREPARED_STATEMENT_ERRORS):
        lost = "a prepared statement"
        if settings.DATABASE_PGBOUNCER == "transaction":
            fix = "set DATABASE_PREPARED_STATEMENTS=0, or max_prepared_statements in pgbouncer.ini (PgBouncer 1.21+)"
        else:
            fix = (
                "set DATABASE_PGBOUNCER=transaction (prepared statements off), or keep them with PgBouncer 1.21+,"
                " max_prepared_statements in pgbouncer.ini and DATABASE_PREPARED_STATEMENTS=1"
            )
    else:
        lost = "a cursor"
        fix = "set DATABASE_PGBOUNCER=transaction (Django then reads without server-side cursors)"
    return (
        f"{exc} - the connection lost {lost} between two transactions: a pooler in transaction mode"
        f" (PgBouncer's pool_mode = transaction) ran them on different server connections; {fix}"
        " (docs/pgbouncer.md)"
    )


class PoolerErrorWrapper(DatabaseErrorWrapper):
    """Django's error wrapper, with ``OperationalError`` and a hint for what a transaction pooler refuses.
    Every statement passes through it; without an error it costs what Django's does."""

    def __exit__(self, exc_type, exc_value, traceback):
        if exc_type is None:
            return
        if issubclass(exc_type, POOLER_ERRORS):
            self.wrapper.errors_occurred = True
            message = pooler_hint(exc_value)
            logger.error("database: %s", message)
            raise OperationalError(message).with_traceback(traceback) from exc_value
        super().__exit__(exc_type, exc_value, traceback)


def _wrap_errors(sender, connection, **kwargs) -> None:
    # Django's wrap_database_errors is a cached property: this instance's own, from its first connection on.
    if connection.vendor == "postgresql" and not isinstance(connection.wrap_database_errors, PoolerErrorWrapper):
        connection.wrap_database_errors = PoolerErrorWrapper(connection)


def explain_pooler_errors() -> None:
    connection_created.connect(_wrap_errors, dispatch_uid="database.pgbouncer")
