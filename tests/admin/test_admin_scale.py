"""Admin list pages with 100,000 rows: a constant, small number of queries (no N+1, no full counts),
whatever the filter. Rows are generated in PostgreSQL itself (generate_series) to keep the test quick."""

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.urls import reverse

from tests.factories import ConversationFactory, UserFactory

pytestmark = pytest.mark.django_db

ROWS = 100_000


@pytest.fixture
def crowded(number):
    conversations = [ConversationFactory(number=number) for _ in range(20)]
    ids = "{" + ",".join(str(c.pk) for c in conversations) + "}"
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO conversations_message
              (conversation_id, wamid, direction, type, body, preview, content, context, reply_to_wamid,
               timestamp, status, error_title, send_attempts, created_at)
            SELECT (%s::bigint[])[1 + i %% 20], 'wamid.SCALE' || i, CASE WHEN i %% 3 = 0 THEN 'out' ELSE 'in' END,
                   'text', 'message ' || i, 'message ' || i, '{}', '{}', '',
                   now() - (i || ' seconds')::interval, CASE WHEN i %% 3 = 0 THEN 'read' ELSE 'received' END,
                   '', 0, now()
            FROM generate_series(1, %s) AS i
            """,
            [ids, ROWS],
        )
        cursor.execute(
            """
            INSERT INTO webhooks_webhookevent
              (received_at, raw_body, signature, state, attempts, error, item_errors, phone_number_id, processed_at)
            SELECT now() - (i || ' seconds')::interval, '{}', '',
                   CASE WHEN i %% 50 = 0 THEN 'failed' ELSE 'processed' END, 1, '',
                   CASE WHEN i %% 70 = 0 THEN '[{"path": "x", "error": "y"}]'::jsonb ELSE '[]'::jsonb END,
                   %s, now()
            FROM generate_series(1, %s) AS i
            """,
            [number.phone_number_id, ROWS],
        )
    return conversations


PAGES = [
    ("conversations_message", ""),
    ("conversations_message", "?direction__exact=out&status__exact=read"),
    ("conversations_message", "?q=wamid.SCALE77"),
    ("webhooks_webhookevent", ""),
    ("webhooks_webhookevent", "?state__exact=failed"),
    ("webhooks_webhookevent", "?item_errors=yes"),
    ("webhooks_webhookevent", "?phone_number_id=427715309981234"),
    ("conversations_conversation", ""),
]


def staff_who_may_view(number):
    """Not a superuser: lists are narrowed to the numbers they are members of."""
    user = UserFactory(username="viewer")
    user.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))
    number.members.add(user)
    return user


@pytest.mark.parametrize("who", ["superuser", "member"])
def test_list_pages_use_few_queries_with_100k_rows(client, number, crowded, who, django_assert_max_num_queries):
    user = UserFactory(username="root", is_superuser=True) if who == "superuser" else staff_who_may_view(number)
    client.force_login(user)
    for model, query in PAGES:
        with django_assert_max_num_queries(12):
            response = client.get(reverse(f"admin:{model}_changelist") + query)
        assert response.status_code == 200, (model, query)
