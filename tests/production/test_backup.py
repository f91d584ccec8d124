"""``config/bin/backup`` and ``config/bin/restore``: the test database dumped to a file and restored into a fresh
database created here (and dropped at the end), with every table's row count compared."""

import os
import subprocess
import uuid

import psycopg
import pytest
from django.conf import settings

from tests.factories import MessageFactory
from tests.production.conftest import ROOT
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db(transaction=True)


def _url(name: str) -> str:
    db = settings.DATABASES["default"]
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{name}"


def _row_counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
            ).fetchall()
        ]
        return {table: conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] for table in tables}


def _run(script: str, *args: str, database_url: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.run(
        [str(ROOT / "config" / "bin" / script), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def fresh_database():
    name = f"test_restore_{uuid.uuid4().hex[:10]}"
    admin_url = _url("postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _url(name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_backup_then_restore_into_a_fresh_database(tmp_path, fresh_database):
    MessageFactory.create_batch(3)
    WebhookEvent.objects.create(raw_body='{"object": "whatsapp_business_account"}')
    source_url = _url(settings.DATABASES["default"]["NAME"])
    dump = tmp_path / "nested" / "inbox.dump"

    backup = _run("backup", str(dump), database_url=source_url)
    assert backup.returncode == 0, backup.stderr
    assert backup.stdout.strip() == str(dump)
    assert dump.stat().st_size > 0
    assert not dump.with_name("inbox.dump.partial").exists()

    refused = _run("restore", str(dump), database_url=fresh_database)
    assert refused.returncode == 2
    assert "--yes" in refused.stderr

    restore = _run("restore", str(dump), "--yes", database_url=fresh_database)
    assert restore.returncode == 0, restore.stderr

    source, restored = _row_counts(source_url), _row_counts(fresh_database)
    assert restored == source
    assert source["conversations_message"] == 3 and source["webhooks_webhookevent"] == 1
    with psycopg.connect(fresh_database) as conn:
        raw = conn.execute("SELECT raw_body FROM webhooks_webhookevent").fetchone()[0]
    assert raw == '{"object": "whatsapp_business_account"}'


def test_restore_over_existing_data_replaces_it(tmp_path, fresh_database):
    MessageFactory.create_batch(2)
    source_url = _url(settings.DATABASES["default"]["NAME"])
    dump = tmp_path / "inbox.dump"
    assert _run("backup", str(dump), database_url=source_url).returncode == 0
    assert _run("restore", str(dump), "--yes", database_url=fresh_database).returncode == 0
    # A second restore onto the now populated database (the usual recovery case) gives the same rows.
    again = _run("restore", str(dump), "--yes", database_url=fresh_database)
    assert again.returncode == 0, again.stderr
    assert _row_counts(fresh_database) == _row_counts(source_url)


def test_backup_needs_database_url(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    result = subprocess.run(
        [str(ROOT / "config" / "bin" / "backup"), str(tmp_path / "x.dump")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "DATABASE_URL must be set" in result.stderr
