"""PgBouncer's settings (config/settings/base.py and production.py), loaded by real processes as a deployment
loads them: DATABASE_PGBOUNCER=transaction turns off server-side cursors and prepared statements, and a
configuration PgBouncer's transaction pooling would break stops start-up with a message naming the setting."""

import json

import pytest

from tests.production.conftest import production_env, python

DATABASE = "postgres://postgres@127.0.0.1:5432/postgres"

DUMP = """
import json, django
django.setup()
from django.conf import settings as s
print(json.dumps({
    "PGBOUNCER": s.DATABASE_PGBOUNCER, "PREPARED": s.DATABASE_PREPARED_STATEMENTS,
    "CURSORS_OFF": s.DATABASES["default"].get("DISABLE_SERVER_SIDE_CURSORS", False),
    "THRESHOLD": s.DATABASES["default"]["OPTIONS"].get("prepare_threshold", "unset"),
}))
"""


def load(**overrides: str | None):
    return python(DUMP, env=production_env(**overrides))


def loaded(**overrides: str | None) -> dict:
    result = load(**overrides)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_without_pgbouncer_nothing_changes():
    assert loaded() == {"PGBOUNCER": "", "PREPARED": True, "CURSORS_OFF": False, "THRESHOLD": "unset"}
    assert loaded(DATABASE_PGBOUNCER="session")["CURSORS_OFF"] is False


def test_transaction_pooling_turns_off_server_side_cursors_and_prepared_statements():
    assert loaded(DATABASE_PGBOUNCER="Transaction") == {
        "PGBOUNCER": "transaction",
        "PREPARED": False,
        "CURSORS_OFF": True,
        "THRESHOLD": None,
    }


def test_a_pgbouncer_that_keeps_prepared_statements_may_have_them():
    s = loaded(
        DATABASE_PGBOUNCER="transaction",
        DATABASE_PREPARED_STATEMENTS="1",
        DATABASE_URL=f"{DATABASE}?prepare_threshold=5",
    )
    assert (s["PREPARED"], s["CURSORS_OFF"], s["THRESHOLD"]) == (True, True, 5)


@pytest.mark.parametrize(
    ("environment", "messages"),
    [
        (
            {"DATABASE_PGBOUNCER": "statement"},
            ["DATABASE_PGBOUNCER must be transaction or session", "statement pooling cannot run transactions"],
        ),
        (
            {"DATABASE_PGBOUNCER": "transaction", "DATABASE_URL": f"{DATABASE}?prepare_threshold=0"},
            [
                "sets prepare_threshold, and DATABASE_PREPARED_STATEMENTS is off",
                "DATABASE_PGBOUNCER=transaction turns it off",
            ],
        ),
        (
            {"DATABASE_PGBOUNCER": "transaction", "DATABASE_URL": f"{DATABASE}?assume_role=inbox_app"},
            ["sets assume_role", "connect as that role"],
        ),
    ],
    ids=["statement-pooling", "prepared-statements-on-the-url", "a-role-for-the-session"],
)
def test_what_transaction_pooling_would_break_stops_start_up_by_name(environment, messages):
    result = load(**environment)
    assert result.returncode != 0
    for message in messages:
        assert message in result.stderr
