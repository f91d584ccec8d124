"""Writes to the inbox domain, split by sub-domain; import from here.

- ``inbound``: customer messages, reactions and read state (what Meta tells us).
- ``statuses``: where outbound messages stand: Meta's status webhooks, the wamid a send returned.
- ``outbound``: staff replies through the Graph API, read receipts, typing indicators.
- ``contacts``: staff's renames and merges of contacts, bound by the numbers they may see.
- ``templates``: message templates synced from the WhatsApp Business Account.
- ``media``: inbound media downloads and outbound uploads.
- ``numbers``: registering a business number after Meta confirms it, and its health (operator commands).
- ``sending``: sending to a phone number from outside the inbox (``send_message``).
- ``stats``: operational numbers (``inbox_stats``).
- ``notes``: the team's private notes in a thread (never sent), and their ``@mentions``.
- ``notifications``: what one staff member should look at (a mention), and reading it.
"""

from conversations.services.inbound import (
    InboundItem,
    apply_reaction,
    get_or_create_conversation,
    mark_conversation_read,
    receive_inbound_messages,
)
from conversations.services.statuses import record_statuses, register_sent_message

__all__ = [
    "InboundItem",
    "apply_reaction",
    "get_or_create_conversation",
    "mark_conversation_read",
    "receive_inbound_messages",
    "record_statuses",
    "register_sent_message",
]
