"""The inbox domain: business numbers and their members, conversations (their status, assignee and activity),
messages, their statuses, reactions and read state."""

import re
from datetime import timedelta

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q, Value
from django.db.models.functions import Coalesce, Length, Lower, Trim
from django.db.models.lookups import GreaterThan, LessThanOrEqual
from django.utils import timezone

from contacts.models import Contact


class AutoAssignment(models.TextChoices):
    OFF = "off", "Off"
    # The online member who was assigned a conversation longest ago.
    ROUND_ROBIN = "round_robin", "Round robin"
    # The online member with the fewest open conversations.
    FEWEST_OPEN = "fewest_open", "Fewest open"


class BusinessNumber(models.Model):
    """A WhatsApp Business number connected through Meta's Cloud API; webhooks route by phone_number_id."""

    phone_number_id = models.CharField(max_length=64, unique=True)
    display_phone_number = models.CharField(max_length=32)
    waba_id = models.CharField("WhatsApp Business Account id", max_length=64, blank=True, default="")
    name = models.CharField(max_length=128, blank=True, default="")
    # Write-only from the admin: the form never renders it back.
    access_token = models.TextField(blank=True, default="")
    # Set when Meta answers 190 (token expired): sending stops until an admin sets a new token.
    needs_reauthorization = models.BooleanField(default=False)
    # Opening a conversation marks the customer's messages read on WhatsApp (blue ticks) unless off.
    send_read_receipts = models.BooleanField(default=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="business_numbers", through="NumberMembership"
    )
    # Replying to an unassigned conversation assigns it to whoever replied.
    assign_on_reply = models.BooleanField(default=True)
    # Resolving a conversation leaves it with no assignee.
    unassign_on_resolve = models.BooleanField(default=False)
    auto_assignment = models.CharField(max_length=12, choices=AutoAssignment.choices, default=AutoAssignment.OFF)
    created_at = models.DateTimeField(auto_now_add=True)
    # What Meta says about the number (account-level webhooks and the poll: conversations/services/account.py),
    # every value as received. Health: quality, messaging limit, throughput, connection status. The columns
    # added to tables that already had rows carry their default in the database too (db_default), so a
    # process of the release before, during a rolling deploy, can still insert a row.
    quality_rating = models.CharField(
        max_length=64, blank=True, default="", db_default=""
    )  # GREEN, YELLOW, RED, UNKNOWN, NA
    quality_event = models.CharField(
        max_length=64, blank=True, default="", db_default=""
    )  # the last quality update's event
    messaging_limit_tier = models.CharField(
        max_length=64, blank=True, default="", db_default=""
    )  # current_limit, TIER_*
    throughput_level = models.CharField(max_length=64, blank=True, default="", db_default="")  # STANDARD, HIGH
    meta_status = models.CharField(
        "status on Meta", max_length=64, blank=True, default="", db_default=""
    )  # CONNECTED, ...
    # Meta's time of the newest health news applied: an older delivery never overwrites a newer one.
    health_updated_at = models.DateTimeField(null=True, blank=True)
    # The display name's review.
    name_status = models.CharField(
        max_length=64, blank=True, default="", db_default=""
    )  # APPROVED, PENDING_REVIEW, ...
    requested_name = models.CharField(max_length=256, blank=True, default="", db_default="")
    verified_name = models.CharField(max_length=256, blank=True, default="", db_default="")
    name_rejection_reason = models.CharField(max_length=64, blank=True, default="", db_default="")
    name_updated_at = models.DateTimeField(null=True, blank=True)
    # Coexistence (docs/meta.md §3.7): the WhatsApp Business app answers on this number too. Set by anything
    # only such a number receives (an echo, the history, the contact sync); the poll does not ask Meta's
    # ``is_on_biz_app``, whose meaning Meta does not document (and a field Meta does not know fails the poll).
    on_business_app = models.BooleanField(default=False, db_default=False)
    # The import of the phone app's past chats (Meta's ``history`` webhooks): Meta's overall progress (0..100),
    # the newest phase seen, how many messages it brought, and the business's refusal to share, if it refused.
    history_progress = models.PositiveSmallIntegerField(null=True, blank=True)
    history_phase = models.PositiveSmallIntegerField(null=True, blank=True)
    history_messages = models.PositiveIntegerField(default=0, db_default=0)
    history_declined = models.CharField(max_length=300, blank=True, default="", db_default="")

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(history_progress__lte=100), name="number_history_progress_at_most_100"
            ),
        ]

    def __str__(self) -> str:
        return self.name or self.display_phone_number

    @property
    def access_token_or_default(self) -> str:
        """The number's own token, else the deployment's META_ACCESS_TOKEN."""
        return self.access_token or settings.META_ACCESS_TOKEN


class MemberRole(models.TextChoices):
    AGENT = "agent", "Agent"
    # Assigns anyone's conversations and changes the number's assignment settings.
    SUPERVISOR = "supervisor", "Supervisor"


class NumberMembership(models.Model):
    """A staff member of a business number: who sees its conversations, with their role there and what
    auto-assignment may give them. The table is the one the plain many-to-many ``members`` had."""

    number = models.ForeignKey(
        BusinessNumber, on_delete=models.CASCADE, related_name="memberships", db_column="businessnumber_id"
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="number_memberships")
    role = models.CharField(max_length=12, choices=MemberRole.choices, default=MemberRole.AGENT)
    # Auto-assignment gives this member no more open (or pending) conversations of the number than this.
    max_open = models.PositiveIntegerField("open conversations at most", default=10)
    # Set by the member: online or not, auto-assignment passes them by.
    away = models.BooleanField(default=False)
    # When auto-assignment last gave this member a conversation: round robin picks the longest ago.
    last_assigned_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        db_table = "conversations_businessnumber_members"
        # The constraint (and its name) the many-to-many table was created with.
        unique_together = [("number", "user")]

    def __str__(self) -> str:
        return f"{self.user} on {self.number} ({self.role})"


# Meta: free-form messages only within 24 hours of the customer's last message (docs/meta.md §8).
CUSTOMER_SERVICE_WINDOW = timedelta(hours=24)


class ConversationStatus(models.TextChoices):
    OPEN = "open", "Open"
    # Waiting on the customer.
    PENDING = "pending", "Pending"
    # Out of the way until ``snoozed_until``; a customer's message or that time reopens it.
    SNOOZED = "snoozed", "Snoozed"
    RESOLVED = "resolved", "Resolved"


# What counts against a member's ``max_open``: the conversations they still have to work on.
ACTIVE_STATUSES = (ConversationStatus.OPEN, ConversationStatus.PENDING)


class Conversation(models.Model):
    """The one thread between a business number and a contact."""

    # No index of its own: the unique (number, contact) and conversation_activity indexes both lead with it,
    # and every index is written again each time a new message moves last_message_at.
    number = models.ForeignKey(BusinessNumber, on_delete=models.CASCADE, related_name="conversations", db_index=False)
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="conversations")
    last_message_at = models.DateTimeField()
    last_message_preview = models.CharField(max_length=300, blank=True, default="")
    last_message_direction = models.CharField(max_length=3, blank=True, default="")
    # Meta's timestamp of the customer's latest message: opens the 24-hour customer service window.
    last_inbound_at = models.DateTimeField(null=True, blank=True)
    # How many customer messages the conversation holds. Kept by database triggers on the messages table
    # (migration 0003), whoever inserts, moves or deletes them; unread counts are this minus what each
    # staff member had read (ReadState.read_inbound_count), with no count over the messages table.
    inbound_count = models.BigIntegerField(default=0, db_default=0, editable=False)
    # A read receipt owed to the customer: up to this (inbound) message, asked for at that time. Kept until
    # Meta took it, so a receipt whose task was lost (Redis down) is sent by the outbound sweep.
    read_receipt_message_id = models.BigIntegerField(null=True, blank=True, editable=False)
    read_receipt_requested_at = models.DateTimeField(null=True, blank=True, editable=False)
    status = models.CharField(
        max_length=10, choices=ConversationStatus.choices, default=ConversationStatus.OPEN, db_default="open"
    )
    snoozed_until = models.DateTimeField(null=True, blank=True)
    # A member of the number, or nobody (services/assignment.py keeps it so).
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_conversations",
        db_index=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["number", "contact"], name="conversation_one_per_number_contact"),
            models.CheckConstraint(
                condition=models.Q(inbound_count__gte=0), name="conversation_inbound_count_not_negative"
            ),
            models.CheckConstraint(condition=Q(status__in=ConversationStatus.values), name="conversation_status_known"),
            # A snoozed conversation says until when, and only a snoozed one does.
            models.CheckConstraint(
                condition=Q(status=ConversationStatus.SNOOZED, snoozed_until__isnull=False)
                | (~Q(status=ConversationStatus.SNOOZED) & Q(snoozed_until__isnull=True)),
                name="conversation_snoozed_until_iff_snoozed",
            ),
        ]
        indexes = [
            models.Index(fields=["number", "-last_message_at", "-id"], name="conversation_activity"),
            # The same order across numbers: a list of several numbers (a supervisor's, a superuser's) reads its
            # newest conversations off this one instead of sorting all of theirs (300,000: 46 ms -> 0.2 ms).
            models.Index(fields=["-last_message_at", "-id"], name="conversation_recent"),
            # The sweep's look for receipts owed: only the few rows that owe one are in it.
            models.Index(
                fields=["read_receipt_requested_at"],
                condition=Q(read_receipt_message_id__isnull=False),
                name="conversation_receipt_owed",
            ),
            # The snooze sweep's look for snoozes that ended: only snoozed rows are in it.
            models.Index(
                fields=["snoozed_until"], condition=Q(status=ConversationStatus.SNOOZED), name="conversation_snoozed"
            ),
            # A member's open conversations (auto-assignment's limit); unassigned rows are not in it.
            models.Index(
                fields=["assignee", "number"],
                condition=Q(assignee__isnull=False, status__in=ACTIVE_STATUSES),
                name="conversation_assignee_active",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.contact} ↔ {self.number}"

    @property
    def window_closes_at(self):
        """End of the 24-hour customer service window; ``None`` if the customer never wrote."""
        return self.last_inbound_at + CUSTOMER_SERVICE_WINDOW if self.last_inbound_at else None

    def window_is_open(self, at=None) -> bool:
        closes = self.window_closes_at
        return closes is not None and (at or timezone.now()) < closes

    def note_message(self, message: "Message", *, window: bool = True) -> bool:
        """Move the summary of the last message (``SUMMARY_FIELDS``) forward to ``message``, never back:
        messages arrive out of order; of two with the same timestamp (Meta's are whole seconds) the one noted
        last wins. In memory; whether anything changed. The caller holds the row locked, so its values are
        current, and saves them; it notes only messages the thread shows (``selectors.thread_messages``).
        ``window=False``: the message does not move the customer service window (an imported past one)."""
        changed = False
        if self.last_message_at <= message.timestamp:
            self.last_message_at = message.timestamp
            self.last_message_preview = message.preview[:300]
            self.last_message_direction = message.direction
            changed = True
        newer_inbound = self.last_inbound_at is None or self.last_inbound_at < message.timestamp
        if window and message.direction == Direction.INBOUND and newer_inbound:
            self.last_inbound_at = message.timestamp
            changed = True
        return changed


class ActivityKind(models.TextChoices):
    # details: {"from", "to", "snoozed_until"?}; actor null: the customer's message or the snooze's end
    # (details "reason": "customer_message" / "snooze_ended").
    STATUS = "status", "Status changed"
    # details: {"assignee": {"id", "name"} | null, "previous": {"id", "name"} | null, "reason"}; reason is one
    # of "assigned", "took", "handed_back", "replied", "auto", "resolved", "left" (no longer a member),
    # "deactivated" (the account was).
    ASSIGNMENT = "assignment", "Assignment changed"
    # details: {"added" | "removed": {"id", "name", "colour"}}.
    LABEL = "label", "Label changed"


class ConversationActivity(models.Model):
    """One change of a conversation's status or assignee, who made it and when: the thread's activity lines
    and the audit trail. Append-only: rows are inserted and never changed (``save`` refuses an update)."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="activities", db_index=False)
    kind = models.CharField(max_length=12, choices=ActivityKind.choices)
    # Null: the customer (their message reopened it) or the system (a snooze ended, auto-assignment).
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    details = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "conversation activities"
        indexes = [models.Index(fields=["conversation", "created_at", "id"], name="activity_thread_order")]

    def __str__(self) -> str:
        return f"{self.kind} on conversation {self.conversation_id}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("conversation activity is append-only")
        super().save(*args, **kwargs)


# What a conversation keeps of its last message, for the inbox list (``Conversation.note_message``).
# The inbox list's line of a conversation, and with the customer's last message the whole summary it notes.
LIST_LINE_FIELDS = ["last_message_at", "last_message_preview", "last_message_direction"]
SUMMARY_FIELDS = [*LIST_LINE_FIELDS, "last_inbound_at"]


class Direction(models.TextChoices):
    INBOUND = "in", "Inbound"
    OUTBOUND = "out", "Outbound"


class MessageStatus(models.TextChoices):
    RECEIVED = "received", "Received"  # every inbound message
    PENDING = "pending", "Pending"  # outbound, not yet accepted by Meta
    # Outbound: the send's answer was lost (a read timeout, a dropped connection) and no status webhook has
    # come since: Meta may or may not have the message. Never resent by itself; a person decides.
    UNCONFIRMED = "unconfirmed", "Not confirmed by Meta"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    DELIVERED = "delivered", "Delivered"
    READ = "read", "Read"
    PLAYED = "played", "Played"


# A status only ever moves to a higher rank. `failed` outranks `sent` (a late `sent` cannot un-fail a
# message) but not `delivered`/`read`: Meta can report delivery on another device after a failure.
STATUS_RANK = {
    MessageStatus.RECEIVED: 0,
    MessageStatus.PENDING: 0,
    MessageStatus.UNCONFIRMED: 0,
    MessageStatus.SENT: 10,
    MessageStatus.FAILED: 15,
    MessageStatus.DELIVERED: 20,
    MessageStatus.READ: 30,
    MessageStatus.PLAYED: 40,
}


class Priced(models.Model):
    """What Meta's status webhooks say a message is charged as (``pricing``), each value as received: ``billable``
    is to be deprecated, so whether it costs is read from ``pricing_type`` (``regular``) and the category."""

    pricing_billable = models.BooleanField(null=True, blank=True)
    pricing_model = models.CharField(max_length=32, blank=True, default="", db_default="")  # PMP, CBP
    pricing_type = models.CharField(
        max_length=32, blank=True, default="", db_default=""
    )  # regular, free_customer_service, ...
    pricing_category = models.CharField(
        max_length=32, blank=True, default="", db_default=""
    )  # marketing, utility, service, ...

    class Meta:
        abstract = True


PRICING_FIELDS = ["pricing_billable", "pricing_model", "pricing_type", "pricing_category"]


class Message(Priced):
    # No index of its own: message_thread_order and message_unread_scan both lead with it.
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages", db_index=False)
    # Meta's message id; null only for an outbound message Meta has not accepted yet.
    wamid = models.CharField(max_length=200, null=True, blank=True)
    direction = models.CharField(max_length=3, choices=Direction.choices)
    # Meta's type string as received, including types this code does not know yet.
    type = models.CharField(max_length=40)
    # The message's own words: text body, caption, button/list title. Empty for e.g. a sticker.
    body = models.TextField(blank=True, default="")
    # One human line for the inbox list and notifications.
    preview = models.CharField(max_length=300, blank=True, default="")
    # The type-specific object from Meta (media ids, location, contact cards, order, ...).
    content = models.JSONField(default=dict, blank=True)
    context = models.JSONField(default=dict, blank=True)
    reply_to_wamid = models.CharField(max_length=200, blank=True, default="")
    # Meta's timestamp: threads are ordered by it, not by arrival.
    timestamp = models.DateTimeField()
    status = models.CharField(max_length=12, choices=MessageStatus.choices)
    status_at = models.DateTimeField(null=True, blank=True)
    error_code = models.IntegerField(null=True, blank=True)
    error_title = models.CharField(max_length=300, blank=True, default="")
    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Outbound only: sent to Meta as biz_opaque_callback_data and echoed in status webhooks, so a status
    # can find its message even when the send response (with the wamid) was lost.
    idempotency_key = models.UUIDField(null=True, blank=True, unique=True, editable=False)
    send_attempts = models.PositiveSmallIntegerField(default=0)
    # Set while a worker is calling the Graph API for this message: no second worker sends it.
    send_claimed_at = models.DateTimeField(null=True, blank=True)
    # When a worker last claimed it.
    send_attempted_at = models.DateTimeField(null=True, blank=True)
    # Meta asked for a send to be tried again: its retry comes by then (the task's backoff for this attempt). Still
    # pending and unclaimed past it, it lost its retry (Redis down as it was queued): the outbound sweep sends it.
    send_retry_due_at = models.DateTimeField(null=True, blank=True)
    # A template sent while the customer service window was closed: it counts against the portfolio's
    # messaging limit (services/limits.py).
    business_initiated = models.BooleanField(default=False, db_default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # Idempotency of ingestion: one row per WhatsApp message, whatever Meta redelivers.
            models.UniqueConstraint(fields=["wamid"], condition=Q(wamid__isnull=False), name="message_unique_wamid"),
            models.CheckConstraint(
                condition=Q(direction="out") | Q(wamid__isnull=False), name="message_inbound_has_wamid"
            ),
        ]
        indexes = [
            models.Index(fields=["conversation", "timestamp", "id"], name="message_thread_order"),
            models.Index(fields=["conversation", "direction", "id"], name="message_unread_scan"),
            # The outbound sweep's look for replies Meta has not accepted: a wamid is set once, so status
            # updates (most of the writes) leave this index alone.
            models.Index(fields=["created_at"], condition=Q(wamid__isnull=True), name="message_awaiting_wamid"),
            # The portfolio's use of its messaging limit: only business-initiated messages are in it.
            models.Index(fields=["timestamp"], condition=Q(business_initiated=True), name="message_business_initiated"),
        ]

    def __str__(self) -> str:
        return f"{self.direction} {self.type} {self.wamid or self.pk}"

    @property
    def status_rank(self) -> int:
        return STATUS_RANK[self.status]


class MessageStatusEvent(Priced):
    """Every status webhook, kept even for a wamid not (yet) known: it is applied when the message appears."""

    wamid = models.CharField(max_length=200)
    # What Meta reports: never our own "unconfirmed".
    status = models.CharField(
        max_length=10, choices=[choice for choice in MessageStatus.choices if choice[0] != MessageStatus.UNCONFIRMED]
    )
    timestamp = models.DateTimeField()
    number = models.ForeignKey(BusinessNumber, on_delete=models.CASCADE, related_name="+")
    recipient_wa_id = models.CharField(max_length=32, blank=True, default="")
    recipient_user_id = models.CharField(max_length=160, blank=True, default="")
    error_code = models.IntegerField(null=True, blank=True)
    error_title = models.CharField(max_length=300, blank=True, default="")
    payload = models.JSONField(default=dict)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["wamid", "status"], name="status_event_unique_wamid_status"),
        ]

    def __str__(self) -> str:
        return f"{self.wamid} {self.status}"


class Reaction(models.Model):
    """A reaction to a message, keyed by the reacted message's wamid (which may be unknown to us): the
    contact's, or the business's own (``contact`` empty), at most one each per message."""

    message_wamid = models.CharField(max_length=200)
    contact = models.ForeignKey(Contact, null=True, blank=True, on_delete=models.CASCADE, related_name="reactions")
    # Empty once the contact removed the reaction; the row stays so an older event cannot resurrect it.
    emoji = models.CharField(max_length=32, blank=True, default="")
    reaction_wamid = models.CharField(max_length=200)
    reacted_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["message_wamid", "contact"], name="reaction_one_per_contact_message"),
            models.UniqueConstraint(
                fields=["message_wamid"], condition=Q(contact__isnull=True), name="reaction_one_per_business_message"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.emoji or '(removed)'} on {self.message_wamid}"


class MessageTemplate(models.Model):
    """A template approved for a WhatsApp Business Account, synced from Meta; the only thing that may be
    sent outside the 24-hour window."""

    waba_id = models.CharField(max_length=64)
    name = models.CharField(max_length=512)
    language = models.CharField(max_length=16)
    status = models.CharField(max_length=32)
    category = models.CharField(max_length=32, blank=True, default="")
    components = models.JSONField(default=list)
    synced_at = models.DateTimeField(auto_now=True)
    # From the account-level webhooks (conversations/services/account.py), as received.
    meta_template_id = models.CharField(max_length=64, blank=True, default="", db_default="")
    status_reason = models.CharField(max_length=64, blank=True, default="", db_default="")  # INVALID_FORMAT, NONE, ...
    status_detail = models.TextField(blank=True, default="", db_default="")  # Meta's rejection or pause text
    quality_score = models.CharField(
        max_length=64, blank=True, default="", db_default=""
    )  # GREEN, YELLOW, RED, UNKNOWN
    # Meta plans to recategorise the template to this at ``category_switches_at``.
    pending_category = models.CharField(max_length=64, blank=True, default="", db_default="")
    category_switches_at = models.DateTimeField(null=True, blank=True)
    # Meta's time of the newest news applied, per kind: an older delivery never overwrites a newer one.
    status_updated_at = models.DateTimeField(null=True, blank=True)
    quality_updated_at = models.DateTimeField(null=True, blank=True)
    category_updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["waba_id", "name", "language"], name="template_unique_per_waba"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.language})"

    @property
    def body_text(self) -> str:
        for component in self.components:
            if str(component.get("type", "")).upper() == "BODY":
                return str(component.get("text", ""))
        return ""

    @property
    def body_parameter_count(self) -> int:
        return len(set(re.findall(r"\{\{(\d+)\}\}", self.body_text)))


class MediaState(models.TextChoices):
    PENDING = "pending", "Pending"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class MediaFile(models.Model):
    """The file of a media message: downloaded from Meta (inbound) or uploaded by staff (outbound).
    Served only through an authorised view, never from a public URL."""

    message = models.OneToOneField(Message, on_delete=models.CASCADE, related_name="media")
    meta_media_id = models.CharField(max_length=128, blank=True, default="")
    mime_type = models.CharField(max_length=128, blank=True, default="")
    # Meta's sha256 as received (base64 in webhooks); checked against the downloaded bytes.
    sha256 = models.CharField(max_length=128, blank=True, default="")
    filename = models.CharField(max_length=255, blank=True, default="")
    size = models.PositiveBigIntegerField(null=True, blank=True)
    file = models.FileField(upload_to="media/%Y/%m/", blank=True, default="")
    state = models.CharField(max_length=10, choices=MediaState.choices, default=MediaState.PENDING)
    error = models.TextField(blank=True, default="")
    attempts = models.PositiveSmallIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            # The outbound sweep's look for downloads left pending.
            models.Index(fields=["updated_at"], condition=Q(state="pending"), name="media_pending"),
        ]

    def __str__(self) -> str:
        return f"{self.mime_type} for message {self.message_id} ({self.state})"


class ReadState(models.Model):
    """How far one staff member has read one conversation; unread counts are per person, not shared."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="read_states")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="read_states")
    # Message ids grow in arrival order, so a late-arriving old message still counts as unread.
    last_read_message_id = models.BigIntegerField(default=0)
    # The conversation's inbound_count when it was read: unread = inbound_count - read_inbound_count.
    read_inbound_count = models.BigIntegerField(default=0, db_default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "conversation"], name="read_state_one_per_user_conversation"),
        ]

    def __str__(self) -> str:
        return f"user {self.user_id} read conversation {self.conversation_id} up to message {self.last_read_message_id}"


class LabelColour(models.TextChoices):
    """A small palette whose chips (white text on the colour) all meet WCAG AA's 4.5:1 contrast."""

    GREY = "grey", "Grey"
    RED = "red", "Red"
    ORANGE = "orange", "Orange"
    GREEN = "green", "Green"
    TEAL = "teal", "Teal"
    BLUE = "blue", "Blue"
    PURPLE = "purple", "Purple"
    PINK = "pink", "Pink"


class Label(models.Model):
    """A number's label for its conversations ("Urgent", "Billing"): a name unique on the number, whatever its case."""

    number = models.ForeignKey(BusinessNumber, on_delete=models.CASCADE, related_name="labels", db_index=False)
    name = models.CharField(max_length=40)
    colour = models.CharField(max_length=10, choices=LabelColour.choices, default=LabelColour.GREY)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint("number", Lower("name"), name="label_name_unique_per_number"),
            models.CheckConstraint(condition=Q(colour__in=LabelColour.values), name="label_colour_known"),
            models.CheckConstraint(condition=~Q(name=""), name="label_name_not_empty"),
        ]

    def __str__(self) -> str:
        return self.name


class ConversationLabel(models.Model):
    """A label set on a conversation: at most once (the constraint), by whom and when."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="label_links", db_index=False)
    # The list's label filter reads this index (label, conversation).
    label = models.ForeignKey(Label, on_delete=models.CASCADE, related_name="conversation_links", db_index=False)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    added_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["conversation", "label"], name="conversation_label_once"),
        ]
        indexes = [models.Index(fields=["label", "conversation"], name="conversation_label_by_label")]

    def __str__(self) -> str:
        return f"{self.label} on conversation {self.conversation_id}"


# A canned reply's shortcut: what follows the "/" in the composer.
SHORTCUT_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,31}$"


class CannedReply(models.Model):
    """A ready answer staff insert by typing "/" and its ``shortcut``: the number's (its whole team's) or one
    person's own (``owner``), exactly one of the two; a shortcut is unique in its scope. ``{{contact_name}}``
    and ``{{agent_name}}`` in the text are filled in when it is used (services/canned_replies.py)."""

    number = models.ForeignKey(
        BusinessNumber, null=True, blank=True, on_delete=models.CASCADE, related_name="canned_replies", db_index=False
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="canned_replies",
        db_index=False,
    )
    shortcut = models.CharField(
        max_length=32,
        validators=[RegexValidator(SHORTCUT_PATTERN, "Lower-case letters, digits, - and _ (at most 32).")],
        help_text='Typed after "/" in the composer: lower-case letters, digits, - and _.',
    )
    text = models.TextField(help_text="{{contact_name}} and {{agent_name}} are filled in when it is used.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "canned replies"
        constraints = [
            models.CheckConstraint(
                condition=Q(number__isnull=False, owner__isnull=True) | Q(number__isnull=True, owner__isnull=False),
                name="canned_reply_number_xor_owner",
            ),
            models.UniqueConstraint(
                fields=["number", "shortcut"],
                condition=Q(number__isnull=False),
                name="canned_reply_shortcut_per_number",
            ),
            models.UniqueConstraint(
                fields=["owner", "shortcut"], condition=Q(owner__isnull=False), name="canned_reply_shortcut_per_owner"
            ),
            models.CheckConstraint(condition=Q(shortcut__regex=SHORTCUT_PATTERN), name="canned_reply_shortcut_form"),
        ]

    def __str__(self) -> str:
        return f"/{self.shortcut}"


# The longest private note, in characters: a note is a word to the team, not a document.
NOTE_MAX_LENGTH = 4000


class ConversationNote(models.Model):
    """A private note of the team in a conversation's thread: never a ``Message``, so nothing that sends a
    message (every send task takes a message id) can ever be handed one, and no customer ever sees it."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="notes", db_index=False)
    # Null once the author's account is deleted: the note stays in the thread.
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    body = models.TextField()
    # The members the note mentions (``@username``), as resolved when it was written.
    mentions = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=GreaterThan(Length(Trim("body")), 0), name="note_body_not_blank"),
            models.CheckConstraint(
                condition=LessThanOrEqual(Length("body"), NOTE_MAX_LENGTH), name="note_body_max_length"
            ),
        ]
        indexes = [models.Index(fields=["conversation", "created_at", "id"], name="note_thread_order")]

    def __str__(self) -> str:
        return f"note {self.pk} on conversation {self.conversation_id}"


class NotificationKind(models.TextChoices):
    # Someone mentioned the recipient in a private note (``note`` says which).
    MENTION = "mention", "Mentioned in a note"
    # Meta's news put one of the supervisor's numbers at risk (``alert`` says which; no conversation).
    NUMBER_ALERT = "number_alert", "Number alert"


class Notification(models.Model):
    """Something one staff member should look at: shown in their inbox's notification list until read. Only
    while the recipient may see the conversation's number (``selectors.notifications_for``)."""

    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=12, choices=NotificationKind.choices)
    conversation = models.ForeignKey(Conversation, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    note = models.ForeignKey(ConversationNote, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    alert = models.ForeignKey("NumberAlert", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=NotificationKind.values), name="notification_kind_known"),
            models.CheckConstraint(
                condition=~Q(kind=NotificationKind.MENTION) | Q(note__isnull=False),
                name="notification_mention_has_note",
            ),
            # A mention is about a conversation, a number alert about a number: exactly one of the two.
            models.CheckConstraint(
                condition=Q(kind=NotificationKind.NUMBER_ALERT, alert__isnull=False, conversation__isnull=True)
                | (~Q(kind=NotificationKind.NUMBER_ALERT) & Q(alert__isnull=True, conversation__isnull=False)),
                name="notification_subject_by_kind",
            ),
            models.UniqueConstraint(
                fields=["recipient", "alert"], condition=Q(alert__isnull=False), name="notification_once_per_alert"
            ),
            # One notification per person and note, however often the note names them.
            models.UniqueConstraint(
                fields=["recipient", "note"], condition=Q(note__isnull=False), name="notification_once_per_note"
            ),
        ]
        indexes = [
            models.Index(fields=["recipient", "-created_at", "-id"], name="notification_list"),
            # The unread count: only unread rows are in it.
            models.Index(fields=["recipient"], condition=Q(read_at__isnull=True), name="notification_unread"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} for user {self.recipient_id} on conversation {self.conversation_id}"


CONTACT_NOTE_MAX_LENGTH = 4000


class ContactNote(models.Model):
    """What a number's team knows about a contact, beside every conversation with them. A contact may write to
    several numbers: each number's notes are its own team's, never shown to another's."""

    number = models.ForeignKey(BusinessNumber, on_delete=models.CASCADE, related_name="contact_notes", db_index=False)
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=GreaterThan(Length(Trim("body")), 0), name="contact_note_not_blank"),
            models.CheckConstraint(
                condition=LessThanOrEqual(Length("body"), CONTACT_NOTE_MAX_LENGTH), name="contact_note_max_length"
            ),
        ]
        # A contact's notes on one number, oldest first (the panel's one read).
        indexes = [models.Index(fields=["number", "contact", "created_at", "id"], name="contact_note_order")]

    def __str__(self) -> str:
        return f"note {self.pk} on contact {self.contact_id} for number {self.number_id}"


class BusinessAccount(models.Model):
    """A WhatsApp Business Account (WABA) of the business numbers, as Meta's account-level webhooks describe
    it: what holds for all its numbers (status, restrictions, the portfolio's messaging limit). Created on
    its first news; the numbers name it by ``waba_id``."""

    waba_id = models.CharField("WhatsApp Business Account id", max_length=64, unique=True)
    # account_update: the last event (ACCOUNT_RESTRICTION, ACCOUNT_VIOLATION, DISABLED_UPDATE, ...).
    status_event = models.CharField(max_length=64, blank=True, default="")
    # [{"type": "RESTRICTED_BIZ_INITIATED_MESSAGING", "expires_at": "<iso>" | null}], from the last restriction.
    restrictions = models.JSONField(default=list, blank=True)
    violation_type = models.CharField(max_length=64, blank=True, default="")
    ban_state = models.CharField(max_length=64, blank=True, default="")
    ban_date = models.CharField(max_length=64, blank=True, default="")
    status_updated_at = models.DateTimeField(null=True, blank=True)
    # The portfolio's messaging limit, shared by every number since 2025-10 (TIER_2K, ..., TIER_UNLIMITED).
    messaging_limit = models.CharField(max_length=64, blank=True, default="")
    max_phone_numbers = models.IntegerField(null=True, blank=True)
    limit_updated_at = models.DateTimeField(null=True, blank=True)
    # What a business-initiated send past the limit does: refuse it, or only warn; empty: the deployment's
    # MESSAGING_LIMIT_ENFORCEMENT.
    limit_enforcement = models.CharField(
        max_length=8,
        blank=True,
        default="",
        db_default="",
        choices=[("", "As the setting says"), ("warn", "Warn only"), ("refuse", "Refuse")],
    )
    # account_alerts: the last alert ({"type", "severity", "status", "description", "entity_type", "entity_id"}).
    last_alert = models.JSONField(default=dict, blank=True)
    alert_updated_at = models.DateTimeField(null=True, blank=True)
    # account_review_update: Meta's review of the account (APPROVED, REJECTED, PENDING, DEFERRED, ...).
    review_decision = models.CharField(max_length=64, blank=True, default="", db_default="")
    review_updated_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"WhatsApp Business Account {self.waba_id}"


class ChangeSource(models.TextChoices):
    WEBHOOK = "webhook", "Webhook"
    POLL = "poll", "Graph API poll"


class AccountChange(models.Model):
    """Append-only history of what Meta said about an account, its numbers, templates and customers'
    marketing preferences, with the delivery it came from. One row per change whatever the redeliveries:
    ``dedupe_key`` is unique."""

    waba_id = models.CharField(max_length=64)
    # The number it is about; null for what concerns the whole account (status, limit, templates).
    number = models.ForeignKey(
        BusinessNumber, null=True, blank=True, on_delete=models.CASCADE, related_name="account_changes", db_index=False
    )
    field = models.CharField(max_length=64)  # the webhook field, or graph_api_poll
    source = models.CharField(max_length=8, choices=ChangeSource.choices)
    values = models.JSONField(default=dict)  # as parsed
    raw = models.JSONField(default=dict, blank=True)  # as received
    # False when it was older than what the state already held (a late delivery), so nothing moved.
    applied = models.BooleanField()
    occurred_at = models.DateTimeField(null=True, blank=True)  # Meta's time
    # The delivery; null for the poll (and once the stored delivery is purged).
    webhook_event = models.ForeignKey(
        "webhooks.WebhookEvent", null=True, blank=True, on_delete=models.SET_NULL, related_name="account_changes"
    )
    dedupe_key = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(source__in=ChangeSource.values), name="account_change_source_known"),
        ]
        indexes = [
            models.Index(fields=["number", "-created_at"], name="account_change_number"),
            models.Index(fields=["waba_id", "-created_at"], name="account_change_waba"),
        ]

    def __str__(self) -> str:
        return f"{self.field} for {self.number or self.waba_id}"


class MarketingPreference(models.Model):
    """Whether a customer stopped marketing messages from a number (Meta's ``user_preferences``): a contact
    may write to numbers of different businesses, each with its own preference. Meta refuses a marketing
    template after a stop (131050)."""

    number = models.ForeignKey(BusinessNumber, on_delete=models.CASCADE, related_name="+", db_index=False)
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="marketing_preferences")
    opted_out = models.BooleanField()
    # Meta's time of the stop or resume applied: an older one never overwrites it.
    changed_at = models.DateTimeField()
    # The staff member who marked it (the customer told them); null when Meta's webhook said it.
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["number", "contact"], name="marketing_preference_one_per_number_contact"),
        ]

    def __str__(self) -> str:
        return f"{'stopped' if self.opted_out else 'receives'} marketing from {self.number_id}: {self.contact_id}"


class AddressBookEntry(models.Model):
    """A customer as the business saved them in the phone app's contacts (Meta's ``smb_app_state_sync``), per
    number: a contact may be saved under different names by different businesses. A removal keeps the row
    (``removed``), so an older "add" arriving late cannot bring it back."""

    number = models.ForeignKey(BusinessNumber, on_delete=models.CASCADE, related_name="+", db_index=False)
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="address_book_entries")
    full_name = models.CharField(max_length=256, blank=True, default="")
    first_name = models.CharField(max_length=256, blank=True, default="")
    removed = models.BooleanField(default=False)
    # Meta's time of the change applied: an older one never overwrites it.
    changed_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "address book entries"
        constraints = [
            models.UniqueConstraint(fields=["number", "contact"], name="address_book_one_per_number_contact"),
        ]

    def __str__(self) -> str:
        return f"{self.full_name or self.contact_id} in the phone app of {self.number_id}"


class NumberAlertKind(models.TextChoices):
    QUALITY = "quality", "Quality is low"
    ACCOUNT = "account", "Account restricted"
    TEMPLATE = "template", "Template stopped"
    # The portfolio reached 80 % of its messaging limit in the last 24 hours (services/limits.py).
    LIMIT = "limit", "Messaging limit nearly reached"
    # The number's two-step verification PIN was changed or reset: raised and ended at once, a notice.
    SECURITY = "security", "Two-step verification changed"


class NumberAlert(models.Model):
    """Something Meta said that puts a number's messaging at risk (its quality dropped, its account is restricted,
    banned or offboarded, one of its account's templates is paused, disabled or rejected), raised by
    ``services/number_alerts.py`` from the change that said it. Open until the state recovers: every member of the
    number sees it in the inbox meanwhile; a notice (a two-step verification change) is ended as it is raised.
    At most one open alert per number, kind and template, and one per change."""

    number = models.ForeignKey(BusinessNumber, on_delete=models.CASCADE, related_name="alerts", db_index=False)
    kind = models.CharField(max_length=12, choices=NumberAlertKind.choices)
    template = models.ForeignKey(MessageTemplate, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    # What Meta said, as received: RED, FLAGGED, ACCOUNT_RESTRICTION, DISABLE, PAUSED, ...
    condition = models.CharField(max_length=64)
    # Meta's own words about it when it sent some (a violation type, a pause or rejection reason).
    detail = models.TextField(blank=True, default="")
    # Indexed by number_alert_once_per_change (its first column).
    change = models.ForeignKey(
        AccountChange, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    raised_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=NumberAlertKind.values), name="number_alert_kind_known"),
            models.CheckConstraint(
                condition=Q(kind=NumberAlertKind.TEMPLATE, template__isnull=False)
                | (~Q(kind=NumberAlertKind.TEMPLATE) & Q(template__isnull=True)),
                name="number_alert_template_by_kind",
            ),
            # An alert of no template counts as template 0: unique on both databases (SQLite has no NULLS NOT
            # DISTINCT, which would leave the embedded mode without the rule).
            models.UniqueConstraint(
                "number",
                "kind",
                Coalesce("template", Value(0)),
                condition=Q(resolved_at__isnull=True),
                name="number_alert_one_open",
            ),
            models.UniqueConstraint(
                "change",
                "number",
                "kind",
                Coalesce("template", Value(0)),
                condition=Q(change__isnull=False),
                name="number_alert_once_per_change",
            ),
        ]
        # The inbox's banners and the Numbers page: the open alerts of some numbers.
        indexes = [models.Index(fields=["number"], condition=Q(resolved_at__isnull=True), name="number_alert_open")]

    def __str__(self) -> str:
        return f"{self.kind} {self.condition} on number {self.number_id}"


class RateCardEntry(models.Model):
    """What Meta charges for one delivered message of a category to a market, in the business's currency, from
    ``valid_from`` until (not including) ``valid_until``. A market is an ISO country (``BR``) or a country calling
    code (``+55``), which covers every country of that code without a row of its own. Loaded by admins
    (``manage.py load_rate_card``); the cost page prices each charged message with it."""

    market = models.CharField(max_length=8, help_text="ISO country (BR) or country calling code (+55)")
    category = models.CharField(max_length=32, help_text="Meta's pricing category: marketing, utility, ...")
    price = models.DecimalField(max_digits=12, decimal_places=6)
    currency = models.CharField(max_length=3)
    valid_from = models.DateField()
    valid_until = models.DateField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["market", "category", "valid_from"], name="rate_card_one_per_start"),
            models.CheckConstraint(
                condition=Q(valid_until__isnull=True) | Q(valid_until__gt=models.F("valid_from")),
                name="rate_card_valid_range",
            ),
            models.CheckConstraint(condition=Q(price__gte=0), name="rate_card_price_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.market} {self.category}: {self.price} {self.currency} from {self.valid_from}"
