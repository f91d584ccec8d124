"""Labels: a number's own tags for its conversations, created by its supervisors, set and removed by anyone who
sees the conversation. Each change is an activity line (``workflow.record_activity``) and a
``conversation.labels_changed`` event carrying the conversation's labels as they are now."""

from django.db import IntegrityError, transaction

from conversations.models import ActivityKind, BusinessNumber, Conversation, ConversationLabel, Label
from conversations.services.errors import WorkflowRefused
from conversations.services.workflow import locked_conversation, record_activity, require_supervisor
from conversations.snapshots import label_snapshot
from realtime import events
from realtime.publish import publish_events


@transaction.atomic
def create_label(*, user, number: BusinessNumber, name: str, colour: str) -> Label:
    """A new label of the number (its supervisors only: 403); a name it has already, in any case, is a 400 on
    ``name`` (the unique constraint decides, so two at once make one)."""
    require_supervisor(user=user, number=number, to="create its labels")
    name = name.strip()
    if not name:
        raise WorkflowRefused("blank_name", "A label needs a name.", field="name")
    try:
        with transaction.atomic():
            return Label.objects.create(number=number, name=name, colour=colour)
    except IntegrityError as error:
        raise WorkflowRefused("label_exists", f"This number has a label {name!r} already.", field="name") from error


def _publish_labels(conversation: Conversation) -> None:
    labels = Label.objects.filter(conversation_links__conversation=conversation).order_by("name")
    payload = {"conversation_id": conversation.pk, "labels": [label_snapshot(label) for label in labels]}
    publish_events(number_id=conversation.number_id, events=[(events.CONVERSATION_LABELS_CHANGED, payload)])


def _check_same_number(*, conversation: Conversation, label: Label) -> None:
    if label.number_id != conversation.number_id:
        raise WorkflowRefused(
            "label_of_another_number", "The label belongs to another number than the conversation.", field="label"
        )


@transaction.atomic
def add_conversation_label(*, user, conversation: Conversation, label: Label) -> bool:
    """Set the label on the conversation; whether it was not set before (setting it again records nothing)."""
    _check_same_number(conversation=conversation, label=label)
    current = locked_conversation(conversation)
    _link, added = ConversationLabel.objects.get_or_create(
        conversation=current, label=label, defaults={"added_by": user}
    )
    if added:
        details = {"added": label_snapshot(label)}
        record_activity(conversation=current, kind=ActivityKind.LABEL, actor=user, details=details)
        _publish_labels(current)
    return added


@transaction.atomic
def remove_conversation_label(*, user, conversation: Conversation, label: Label) -> bool:
    """Take the label off the conversation; whether it was on it."""
    _check_same_number(conversation=conversation, label=label)
    current = locked_conversation(conversation)
    removed, _ = ConversationLabel.objects.filter(conversation=current, label=label).delete()
    if removed:
        details = {"removed": label_snapshot(label)}
        record_activity(conversation=current, kind=ActivityKind.LABEL, actor=user, details=details)
        _publish_labels(current)
    return bool(removed)
