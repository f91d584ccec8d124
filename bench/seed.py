"""Fast generators, all inside PostgreSQL (generate_series): the inbox at scale, and stored webhook events.

Seeded rows follow the models' columns (see tests/admin/test_admin_scale.py). Contacts' wa_ids are
``4470`` + 8 digits; every third seeded message is outbound with status ``sent`` (its wamid
``wamid.SEED<i>``), so status webhooks for it are real upgrades. A message's text is ``message <i>`` and one of
``WORDS`` in turn (each in one message of ``len(WORDS)``), and one message in ``RARE_EVERY`` holds ``RARE_WORD`` too:
what the message search finds.
"""

import importlib
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

from conversations.models import AutoAssignment, BusinessNumber
from sandbox.signing import sign_body
from sandbox.simulation import envelope, message_change, to_wire

WORDS = (
    "order",
    "delivery",
    "refund",
    "invoice",
    "parcel",
    "address",
    "payment",
    "courier",
    "return",
    "tracking",
    "size",
    "colour",
    "discount",
    "receipt",
    "exchange",
    "warranty",
    "stock",
    "shipping",
    "cancel",
    "account",
)
RARE_WORD = "voucher"
RARE_EVERY = 1000
# The message search's index (its one definition, migration 0008), built once after the fill: kept up row by row, a
# million INSERTs take several times as long.
SEARCH_INDEX = importlib.import_module("conversations.migrations.0008_message_search")

NUMBER = {"phone_number_id": "900000000000001", "display_phone_number": "15550009999", "waba_id": "900000000000002"}


def wa_id(i: int) -> str:
    return f"4470{i:08d}"


def signed_inbound(*, wamid: str, customer: int, secret: str) -> tuple[bytes, str]:
    """A seeded customer's text to the seeded number, as Meta delivers it: the body and its signature header."""
    body = to_wire(
        envelope(
            waba_id=NUMBER["waba_id"],
            changes=[
                message_change(
                    phone_number_id=NUMBER["phone_number_id"],
                    display_phone_number=NUMBER["display_phone_number"],
                    wa_id=wa_id(customer),
                    wamid=wamid,
                    name=f"Customer {customer}",
                    content={"text": {"body": "Hi! Is my order on its way? \U0001f642"}},
                )
            ],
        )
    )
    return body, sign_body(raw_body=body, app_secret=secret)


def seed_inbox(*, conversations: int, messages: int) -> BusinessNumber:
    # Auto-assignment on, as a team runs it: every drain round that touches unassigned conversations has them
    # handed out (nobody is online here, so they wait: the work is the lookup, not the assignment).
    number = BusinessNumber.objects.create(name="Bench number", auto_assignment=AutoAssignment.ROUND_ROBIN, **NUMBER)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO contacts_contact (wa_id, username, phone, profile_name, custom_name, created_at, updated_at)
            SELECT '4470' || lpad(i::text, 8, '0'), '', '+4470' || lpad(i::text, 8, '0'), 'Customer ' || i, '', now(), now()
            FROM generate_series(1, %(n)s) AS i
            """,
            {"n": conversations},
        )
        cursor.execute(
            """
            INSERT INTO conversations_conversation
              (number_id, contact_id, last_message_at, last_message_preview, last_message_direction, last_inbound_at, created_at)
            SELECT %(number)s, c.id, now() - ((c.id %% 100000) || ' seconds')::interval, 'message', 'in',
                   now() - interval '1 hour', now()
            FROM contacts_contact c ORDER BY c.id
            """,
            {"number": number.pk},
        )
        cursor.execute(SEARCH_INDEX.DROP)
        cursor.execute(
            """
            INSERT INTO conversations_message
              (conversation_id, wamid, direction, type, body, preview, content, context, reply_to_wamid,
               timestamp, status, error_title, send_attempts, created_at)
            SELECT lo.id + (i %% %(convs)s), 'wamid.SEED' || i, CASE WHEN i %% 3 = 0 THEN 'out' ELSE 'in' END,
                   'text', t.body, t.body, '{}', '{}', '',
                   now() - ((%(n)s - i) || ' seconds')::interval, CASE WHEN i %% 3 = 0 THEN 'sent' ELSE 'received' END,
                   '', 0, now()
            FROM (SELECT min(id) AS id FROM conversations_conversation) AS lo, generate_series(1, %(n)s) AS i,
                 LATERAL (SELECT 'message ' || i || ' ' || (%(words)s::text[])[1 + i %% %(nwords)s]
                                 || CASE WHEN i %% %(rare_every)s = 0 THEN ' ' || %(rare)s ELSE '' END AS body) AS t
            """,
            {
                "n": messages,
                "convs": conversations,
                "words": list(WORDS),
                "nwords": len(WORDS),
                "rare": RARE_WORD,
                "rare_every": RARE_EVERY,
            },
        )
        cursor.execute(SEARCH_INDEX.CREATE)
        # Vacuumed as a long-lived table is: the visibility map set, and autovacuum not busy with the fill while the
        # pages are timed.
        cursor.execute("VACUUM (ANALYZE)")
    return number


def _value_sql(kind: str) -> str:
    """SQL building one Meta ``value`` object for row ``i`` (an inbound text or a status update)."""
    metadata = "jsonb_build_object('display_phone_number', %(display)s, 'phone_number_id', %(pnid)s)"
    if kind == "message":
        return f"""jsonb_build_object('messaging_product', 'whatsapp', 'metadata', {metadata},
          'contacts', jsonb_build_array(jsonb_build_object('profile', jsonb_build_object('name', 'Customer ' || c),
                                                           'wa_id', '4470' || lpad(c::text, 8, '0'))),
          'messages', jsonb_build_array(jsonb_build_object('from', '4470' || lpad(c::text, 8, '0'),
              'id', %(prefix)s || i, 'timestamp', extract(epoch from now())::bigint::text, 'type', 'text',
              'text', jsonb_build_object('body', 'Backlog message ' || i))))"""
    return f"""jsonb_build_object('messaging_product', 'whatsapp', 'metadata', {metadata},
          'statuses', jsonb_build_array(jsonb_build_object('id', 'wamid.SEED' || (3 * i), 'status', 'delivered',
              'timestamp', extract(epoch from now())::bigint::text, 'recipient_id', '4470' || lpad(c::text, 8, '0'))))"""


def store_backlog(
    *, count: int, conversations: int, seeded_messages: int, prefix: str = "wamid.BACKLOG", first_outbound: int = 0
) -> tuple[int, int]:
    """``count`` pending single-update events, alternately an inbound text (new wamid ``prefix<i>``, existing
    contact) and a ``delivered`` status for a seeded outbound message, from the ``first_outbound``-th on (another
    backlog's statuses on other messages are updates too, not repeats). Returns the (first, last) event ids."""
    params = {
        "display": NUMBER["display_phone_number"],
        "pnid": NUMBER["phone_number_id"],
        "waba": NUMBER["waba_id"],
        "prefix": prefix,
        "n": count,
        "convs": conversations,
        "outbound": max(1, seeded_messages // 3),
    }
    sql = f"""
        WITH rows AS (
          SELECT i, CASE WHEN i %% 2 = 0 OR %(outbound)s < 2 THEN {_value_sql("message")} ELSE NULL END AS msg,
                 {_value_sql("status")} AS st
          FROM (SELECT g AS i, 1 + (g %% %(convs)s) AS c FROM generate_series(1, %(n)s) AS g) AS s
        ), payloads AS (
          SELECT i, jsonb_build_object('object', 'whatsapp_business_account', 'entry', jsonb_build_array(
                   jsonb_build_object('id', %(waba)s, 'changes', jsonb_build_array(
                     jsonb_build_object('field', 'messages', 'value', coalesce(msg, st)))))) AS p
          FROM rows
        )
        INSERT INTO webhooks_webhookevent
          (received_at, raw_body, signature, state, attempts, error, item_errors, phone_number_id)
        SELECT now(), p::text, '', 'pending', 0, '', '[]'::jsonb, %(pnid)s FROM payloads ORDER BY i
        RETURNING id
    """
    # Status rows point at wamid.SEED<3i>: keep i within the seeded outbound messages.
    params["n"] = count
    with connection.cursor() as cursor:
        cursor.execute(
            sql.replace(
                "'wamid.SEED' || (3 * i)",
                f"'wamid.SEED' || (3 * (1 + (({first_outbound:d} + i) %% {params['outbound']})))",
            ),
            params,
        )
        ids = [row[0] for row in cursor.fetchall()]
    return ids[0], ids[-1]


@contextmanager
def spread_over_numbers(count: int) -> Iterator[list[BusinessNumber]]:
    """Meanwhile, the seeded conversations are over ``count`` numbers of the seeded account, one in ``count``
    still on the seeded number: a list of several numbers (a supervisor's, a superuser's) is over all of them.
    Afterwards they are back on the seeded number, as the later phases expect."""
    first = BusinessNumber.objects.get(phone_number_id=NUMBER["phone_number_id"])
    others = [
        BusinessNumber.objects.create(
            name=f"Bench number {n + 1}",
            phone_number_id=str(int(NUMBER["phone_number_id"]) + n),
            display_phone_number=str(int(NUMBER["display_phone_number"]) - n),
            waba_id=NUMBER["waba_id"],
        )
        for n in range(1, count)
    ]
    numbers = [first, *others]
    move = "UPDATE conversations_conversation SET number_id = (%(ids)s::bigint[])[1 + id %% %(count)s]"
    with connection.cursor() as cursor:
        cursor.execute(move, {"ids": [number.pk for number in numbers], "count": count})
        cursor.execute("ANALYZE conversations_conversation")
    try:
        yield numbers
    finally:
        with connection.cursor() as cursor:
            cursor.execute(move, {"ids": [first.pk], "count": 1})
            cursor.execute("ANALYZE conversations_conversation")
        BusinessNumber.objects.filter(pk__in=[number.pk for number in others]).delete()
