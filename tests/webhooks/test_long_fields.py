"""Free text longer than the column that keeps it (a profile name, a username, a message type, a quoted id, a
reaction, a document's name and type) reaches the inbox cut to fit, never as a lost message."""

from conversations.models import MediaFile, Message, Reaction
from sandbox.simulation import message_change
from webhooks.models import WebhookEvent, WebhookEventState

NUMBER = {"phone_number_id": "427715309981234", "display_phone_number": "15557730142"}


def test_messages_with_overlong_text_are_stored_with_it_cut_to_fit(number, deliver):
    quoted = "wamid." + "Q" * 300
    deliver(
        message_change(
            **NUMBER,
            wa_id="447700900461",
            name="N" * 400,
            wamid="wamid.LONGNAME",
            content={"text": {"body": "hi"}},
            context={"from": "15557730142", "id": quoted},
        ),
        message_change(**NUMBER, wa_id="447700900462", wamid="wamid.LONGTYPE", message_type="x" * 60, content={}),
        message_change(
            **NUMBER,
            wa_id="447700900463",
            wamid="wamid.LONGDOC",
            message_type="document",
            content={
                "document": {
                    "id": "1234",
                    "mime_type": "application/" + "m" * 200,
                    "filename": "f" * 400,
                    "sha256": "s" * 200,
                }
            },
        ),
        message_change(
            **NUMBER,
            wa_id="447700900461",
            name="N" * 400,
            wamid="wamid.LONGREACTION",
            message_type="reaction",
            content={"reaction": {"message_id": "wamid.LONGNAME", "emoji": "👍" * 60}},
        ),
    )

    [event] = WebhookEvent.objects.all()
    assert (event.state, event.item_errors) == (WebhookEventState.PROCESSED, [])
    messages = {m.wamid: m for m in Message.objects.select_related("conversation__contact")}
    assert set(messages) == {"wamid.LONGNAME", "wamid.LONGTYPE", "wamid.LONGDOC"}
    named = messages["wamid.LONGNAME"]
    assert (named.body, named.conversation.contact.profile_name) == ("hi", "N" * 256)
    assert named.reply_to_wamid == ""  # no message of ours has such an id
    assert messages["wamid.LONGTYPE"].type == "x" * 40
    assert messages["wamid.LONGTYPE"].preview == "Unsupported message"
    media = MediaFile.objects.get(message=messages["wamid.LONGDOC"])
    assert (len(media.filename), len(media.mime_type), len(media.sha256)) == (255, 128, 128)
    [reaction] = Reaction.objects.all()
    assert (reaction.message_wamid, reaction.emoji) == ("wamid.LONGNAME", "👍" * 32)
