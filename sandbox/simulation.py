"""Realistic Meta webhook bodies, built the way Meta builds them (docs/meta.md §3).

Used by ``manage.py simulate_inbound`` to drive a running server for demos and load, and by the tests.
Bodies are serialised with ``to_wire`` (non-ASCII and '/' escaped as Meta does), then signed.
"""

import base64
import json
import secrets
import time
from typing import Any

from sandbox.signing import sign_body

SAMPLE_CONTENT: dict[str, dict[str, Any]] = {
    "text": {"text": {"body": "Hi! Is my order on its way? 🙂"}},
    "image": {
        "image": {
            "id": "1479537139650973",
            "mime_type": "image/jpeg",
            "sha256": "nWsaBZOn1/DgkDxjlvkIanEY5ga4uG9QV+ZsSg1+Yyo=",
            "caption": "This is the parcel",
        }
    },
    "audio": {"audio": {"id": "1003383421387256", "mime_type": "audio/ogg; codecs=opus", "sha256": "x", "voice": True}},
    "video": {"video": {"id": "1190612252539563", "mime_type": "video/mp4", "sha256": "x"}},
    "document": {
        "document": {"id": "3829583567329234", "mime_type": "application/pdf", "sha256": "x", "filename": "invoice.pdf"}
    },
    "sticker": {"sticker": {"id": "1055940532785466", "mime_type": "image/webp", "sha256": "x", "animated": False}},
    "location": {
        "location": {"latitude": 51.5072, "longitude": -0.1276, "name": "Trafalgar Square", "address": "London"}
    },
    "contacts": {
        "contacts": [
            {"name": {"formatted_name": "Ana Lima", "first_name": "Ana"}, "phones": [{"phone": "+5511987650042"}]}
        ]
    },
    "interactive": {"interactive": {"type": "button_reply", "button_reply": {"id": "yes", "title": "Yes, please"}}},
    "button": {"button": {"payload": "CONFIRM", "text": "Confirm"}},
    "order": {
        "order": {
            "catalog_id": "1234",
            "text": "For Friday",
            "product_items": [{"product_retailer_id": "sku-1", "quantity": 2, "item_price": 9.5, "currency": "EUR"}],
        }
    },
    "request_welcome": {},
    "unsupported": {
        "unsupported": {"type": "poll_creation"},
        "errors": [{"code": 131051, "title": "Message type unknown", "message": "Message type unknown"}],
    },
}

MESSAGE_TYPES = tuple(SAMPLE_CONTENT)

# The demo business number: seed_demo registers it, the simulator and the Meta sandbox address it.
DEMO_PHONE_NUMBER_ID = "100000000000001"
DEMO_DISPLAY_PHONE_NUMBER = "15550001111"
DEMO_WABA_ID = "100000000000002"

CUSTOMER_FIRST_NAMES = (
    "Amara", "Ana", "Bruno", "Chen", "Diego", "Fatima", "Hannah", "Ibrahim", "Jonas", "Keiko",
    "Lucía", "Mateo", "Nadia", "Olivier", "Priya", "Rafael", "Sofia", "Tomasz", "Yusuf", "Zoë",
)  # fmt: skip
CUSTOMER_LAST_NAMES = (
    "Okafor", "Lima", "Costa", "Wei", "Hernández", "Haddad", "Becker", "Diallo", "Nilsson", "Tanaka",
    "García", "Rossi", "Karimi", "Dubois", "Sharma", "Oliveira", "Novak", "Kowalski", "Demir", "Müller",
)  # fmt: skip
# Country calling codes and subscriber-number lengths, so wa_ids look like real international numbers.
DIALLING_PLANS = (("44", 10), ("55", 11), ("234", 10), ("91", 10), ("1", 10), ("49", 11), ("34", 9), ("81", 10))
CUSTOMER_TEXTS = (
    "Hi! Is my order on its way? 🙂",
    "Hello, I'd like to change my delivery address.",
    "Do you have this in a size M?",
    "Obrigado pela ajuda! 🙏",
    "Can I pay by bank transfer?",
    "¿Está abierta la tienda el domingo?",
    "The parcel arrived damaged, what should I do?",
    "Thanks, that worked 👍",
    "What time do you close today?",
    "Je n'ai pas reçu le code de confirmation.",
    "Any news about my refund?",
    "Perfect, see you tomorrow at 10.",
)


def simulated_customers(count: int, *, rng) -> list[tuple[str, str]]:
    """``count`` distinct (wa_id, name) pairs drawn from ``rng`` (a ``random.Random``)."""
    customers: dict[str, str] = {}
    while len(customers) < count:
        code, length = rng.choice(DIALLING_PLANS)
        wa_id = code + str(rng.randrange(10 ** (length - 1), 10**length))
        customers.setdefault(wa_id, f"{rng.choice(CUSTOMER_FIRST_NAMES)} {rng.choice(CUSTOMER_LAST_NAMES)}")
    return list(customers.items())


def new_wamid() -> str:
    return "wamid." + base64.b64encode(secrets.token_bytes(24)).decode().rstrip("=")


def envelope(*, waba_id: str, changes: list[dict]) -> dict:
    return {"object": "whatsapp_business_account", "entry": [{"id": waba_id, "changes": changes}]}


def message_change(
    *,
    phone_number_id: str,
    display_phone_number: str,
    wa_id: str | None,
    message_type: str = "text",
    wamid: str | None = None,
    timestamp: int | None = None,
    name: str = "Amara Okafor",
    user_id: str | None = None,
    content: dict | None = None,
    context: dict | None = None,
) -> dict:
    """One ``changes[]`` item carrying one customer message and its sender profile."""
    message: dict[str, Any] = {
        "id": wamid or new_wamid(),
        "timestamp": str(timestamp or int(time.time())),
        "type": message_type,
    }
    if wa_id:
        message["from"] = wa_id
    if user_id:
        message["from_user_id"] = user_id
    if context:
        message["context"] = context
    message.update(content if content is not None else SAMPLE_CONTENT.get(message_type, {}))
    return _customer_change(
        "messages", message, phone_number_id=phone_number_id, display_phone_number=display_phone_number,
        wa_id=wa_id, user_id=user_id, name=name,
    )  # fmt: skip


def _customer_change(
    field_name: str,
    item: dict[str, Any],
    *,
    phone_number_id: str,
    display_phone_number: str,
    wa_id: str | None,
    user_id: str | None,
    name: str,
) -> dict:
    """A change carrying one item of a conversation with a customer, and the customer's profile."""
    contact: dict[str, Any] = {"profile": {"name": name}}
    if wa_id:
        contact["wa_id"] = wa_id
    if user_id:
        contact["user_id"] = user_id
    items_key = "message_echoes" if field_name == "smb_message_echoes" else "messages"
    return {
        "field": field_name,
        "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": display_phone_number, "phone_number_id": phone_number_id},
            "contacts": [contact],
            items_key: [item],
        },
    }


def echo_change(
    *,
    phone_number_id: str,
    display_phone_number: str,
    wa_id: str | None,
    user_id: str | None = None,
    name: str = "Amara Okafor",
    message_type: str = "text",
    content: dict | None = None,
    wamid: str | None = None,
    timestamp: int | None = None,
) -> dict:
    """One ``smb_message_echoes`` change: a message the business sent from the WhatsApp Business app of a
    Coexistence number, ``from`` the business to the customer (docs/meta.md §3.7)."""
    echo: dict[str, Any] = {
        "from": display_phone_number,
        "id": wamid or new_wamid(),
        "timestamp": str(timestamp or int(time.time())),
        "type": message_type,
    }
    if wa_id:
        echo["to"] = wa_id
    if user_id:
        echo["to_user_id"] = user_id
    echo.update(content if content is not None else {"text": {"body": "Yes, it left this morning."}})
    return _customer_change(
        "smb_message_echoes", echo, phone_number_id=phone_number_id, display_phone_number=display_phone_number,
        wa_id=wa_id, user_id=user_id, name=name,
    )  # fmt: skip


def history_change(
    *,
    phone_number_id: str,
    display_phone_number: str,
    threads: list[dict],
    phase: int = 2,
    chunk_order: int = 1,
    progress: int = 100,
) -> dict:
    """One ``history`` change: a chunk of a Coexistence number's past chats (docs/meta.md §3.7). ``threads``:
    ``[{"wa_id", "messages": [{"text", "from_business"?, "timestamp"?, "status"?, "wamid"?}]}]``, or instead of
    ``text`` another ``type`` with its ``content`` (``{"reaction": {...}}``); the business's messages carry
    ``to``, as Meta's do."""
    raw_threads = []
    for thread in threads:
        messages = []
        for item in thread["messages"]:
            message: dict[str, Any] = {
                "from": display_phone_number if item.get("from_business") else thread["wa_id"],
                "id": item.get("wamid") or new_wamid(),
                "timestamp": str(item.get("timestamp") or int(time.time())),
                "type": item.get("type", "text"),
                **(item["content"] if "content" in item else {"text": {"body": item["text"]}}),
                "history_context": {
                    "status": item.get("status") or ("READ" if item.get("from_business") else "DELIVERED")
                },
            }
            if item.get("from_business"):
                message["to"] = thread["wa_id"]
            messages.append(message)
        raw_threads.append({"id": thread["wa_id"], "messages": messages})
    return _phone_app_change(
        "history",
        {
            "history": [
                {"metadata": {"phase": phase, "chunk_order": chunk_order, "progress": progress}, "threads": raw_threads}
            ]
        },
        phone_number_id=phone_number_id,
        display_phone_number=display_phone_number,
    )


def history_declined_change(*, phone_number_id: str, display_phone_number: str) -> dict:
    """The ``history`` change Meta sends when the business declined to share its chat history."""
    error = {
        "code": 2593109,
        "title": "History sync is turned off by the business from the WhatsApp Business app",
        "message": "History sync is turned off by the business from the WhatsApp Business app",
        "error_data": {"details": "The business declined to share its chat history."},
    }
    return _phone_app_change(
        "history",
        {"history": [{"errors": [error]}]},
        phone_number_id=phone_number_id,
        display_phone_number=display_phone_number,
    )


def contact_sync_change(*, phone_number_id: str, display_phone_number: str, contacts: list[dict]) -> dict:
    """One ``smb_app_state_sync`` change: the phone app's contacts added, edited (``add``) or removed.
    ``contacts``: ``[{"phone_number", "full_name"?, "first_name"?, "action"?, "timestamp"?}]``."""
    items = []
    for contact in contacts:
        action = contact.get("action") or "add"
        card = {"phone_number": contact["phone_number"]}
        if action != "remove":
            full_name = contact.get("full_name") or ""
            card = {"full_name": full_name, "first_name": contact.get("first_name") or full_name.split(" ")[0], **card}
        items.append(
            {
                "type": "contact",
                "contact": card,
                "action": action,
                "metadata": {"timestamp": str(contact.get("timestamp") or int(time.time()))},
            }
        )
    return _phone_app_change(
        "smb_app_state_sync",
        {"state_sync": items},
        phone_number_id=phone_number_id,
        display_phone_number=display_phone_number,
    )


def _phone_app_change(field_name: str, value: dict, *, phone_number_id: str, display_phone_number: str) -> dict:
    return {
        "field": field_name,
        "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": display_phone_number, "phone_number_id": phone_number_id},
            **value,
        },
    }


def edit_content(*, original_wamid: str, text: str) -> dict:
    """A customer's edit of an earlier text (``type: "edit"``), as Coexistence numbers receive it."""
    return {"edit": {"original_message_id": original_wamid, "message": {"type": "text", "text": {"body": text}}}}


def revoke_content(*, original_wamid: str) -> dict:
    """A customer's "delete for everyone" of an earlier message (``type: "revoke"``)."""
    return {"revoke": {"original_message_id": original_wamid}}


def status_change(
    *,
    phone_number_id: str,
    display_phone_number: str,
    wamid: str,
    status: str,
    recipient_wa_id: str,
    timestamp: int | None = None,
    error_code: int | None = None,
    error_title: str = "",
) -> dict:
    item: dict[str, Any] = {
        "id": wamid,
        "status": status,
        "timestamp": str(timestamp or int(time.time())),
        "recipient_id": recipient_wa_id,
    }
    if status == "failed":
        item["errors"] = [{"code": error_code or 131026, "title": error_title or "Message undeliverable"}]
    return {
        "field": "messages",
        "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": display_phone_number, "phone_number_id": phone_number_id},
            "statuses": [item],
        },
    }


def to_wire(payload: dict) -> bytes:
    """Serialise as Meta does: ASCII only, with '/' escaped (docs/meta.md §2)."""
    return json.dumps(payload, ensure_ascii=True, separators=(",", ":")).replace("/", "\\/").encode()


def signed_request(payload: dict, *, app_secret: str) -> tuple[bytes, dict[str, str]]:
    body = to_wire(payload)
    return body, {
        "Content-Type": "application/json",
        "X-Hub-Signature-256": sign_body(raw_body=body, app_secret=app_secret),
    }
