"""Admin for numbers, conversations, messages (read-only: they are Meta's record) and contacts. Staff who are
not superusers see only the rows of the numbers they are members of; access tokens are never shown."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Q, Subquery
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from contacts.models import Contact
from conversations.graph_api import GraphError
from conversations.models import (
    AccountChange,
    BusinessAccount,
    BusinessNumber,
    CannedReply,
    Conversation,
    ConversationActivity,
    ConversationNote,
    Label,
    Message,
    MessageStatusEvent,
    MessageTemplate,
    Notification,
    NumberMembership,
    RateCardEntry,
    Reaction,
)
from conversations.selectors import can_change_contact, supervised_numbers, visible_contacts, visible_numbers
from conversations.services.contacts import ContactChangeForbidden, merge_contact_group, rename_contact
from conversations.services.errors import RetryLater, WorkflowRefused
from conversations.services.numbers import check_number_health
from conversations.services.template_management import delete_template
from conversations.services.templates import sync_templates


class MembersOnlyAdmin(admin.ModelAdmin):
    """Staff who are not superusers see, change and act on only the rows of the business numbers they are
    members of (lists, change pages, history, bulk actions all start from ``get_queryset``). Django's model
    permissions (view/change/delete) stay global; this narrows the rows they apply to."""

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return self.rows_of_numbers(queryset, numbers=members_numbers(request))

    def rows_of_numbers(self, queryset, *, numbers: list[BusinessNumber]):
        raise NotImplementedError


def members_numbers(request) -> list[BusinessNumber]:
    """The numbers the request's user may see, read once per request: a list page asks for its queryset
    several times. Their ids go into the queries as values, so each table's (number, ...) index serves."""
    if not hasattr(request, "_members_numbers"):
        request._members_numbers = list(visible_numbers(user=request.user).only("pk", "phone_number_id", "waba_id"))
    return request._members_numbers


class VisibleNumberFilter(admin.RelatedFieldListFilter):
    """The "number" filter offers only the numbers the staff member may see."""

    def field_choices(self, field, request, model_admin):
        ordering = self.field_admin_ordering(field, request, model_admin)
        visible = {} if request.user.is_superuser else {"pk__in": [n.pk for n in members_numbers(request)]}
        return field.get_choices(include_blank=False, ordering=ordering, limit_choices_to=visible)


# A token this long gives little away by its last four characters; a shorter one shows none.
TOKEN_TAIL_SHOWN_FROM_LENGTH = 20


def describe_access_token(token: str) -> str:
    """Whether a token is set, and its last four characters to tell tokens apart: never the token."""
    if not token:
        return "not set (uses META_ACCESS_TOKEN)"
    if len(token) < TOKEN_TAIL_SHOWN_FROM_LENGTH:
        return "set"
    return f"set, ends in …{token[-4:]}"


class BusinessNumberForm(forms.ModelForm):
    # Write-only: the stored token is not a form field, so no page (change, view-only, history) renders it.
    new_access_token = forms.CharField(
        required=False,
        label="New access token",
        widget=forms.PasswordInput(render_value=False),
        help_text="Leave empty to keep the current token.",
    )

    class Meta:
        model = BusinessNumber
        exclude = ("access_token",)  # noqa: DJ006 - every field but the token, which is never rendered

    def save(self, commit=True):
        token = self.cleaned_data.get("new_access_token")
        if token:
            self.instance.access_token = token
            # A new token is the fix for Meta's 190: sending resumes.
            self.instance.needs_reauthorization = False
        return super().save(commit)


class MembershipInline(admin.TabularInline):
    """The number's members with their role and auto-assignment limits. Editable with the number, as the plain
    member list was: whoever may change the number may change who is on it."""

    model = NumberMembership
    fields = ("user", "role", "max_open", "away")
    extra = 0
    verbose_name = "member"

    def has_view_permission(self, request, obj=None):
        return self._parent_admin().has_view_permission(request, obj)

    def has_add_permission(self, request, obj=None):
        return self._parent_admin().has_change_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._parent_admin().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._parent_admin().has_change_permission(request, obj)

    def _parent_admin(self):
        return self.admin_site._registry[BusinessNumber]


# What Meta says about the number (account-level webhooks, the poll): shown, never typed in.
META_STATE_FIELDS = (
    "quality_rating",
    "quality_event",
    "messaging_limit_tier",
    "throughput_level",
    "meta_status",
    "health_updated_at",
    "name_status",
    "requested_name",
    "verified_name",
    "name_rejection_reason",
    "name_updated_at",
)
CHANGES_SHOWN = 20
ACCOUNT_CHANGE_FIELDS = ("created_at", "field", "source", "applied", "occurred_at", "values", "webhook_event")


@admin.register(BusinessNumber)
class BusinessNumberAdmin(MembersOnlyAdmin):
    form = BusinessNumberForm
    list_display = (
        "display_phone_number",
        "name",
        "phone_number_id",
        "waba_id",
        "has_token",
        "needs_reauthorization",
        "auto_assignment",
    )
    list_filter = ("needs_reauthorization", "auto_assignment")
    search_fields = ("display_phone_number", "name", "phone_number_id")
    inlines = [MembershipInline]
    actions = ["check_connection", "sync_message_templates"]
    fields = (
        "phone_number_id",
        "display_phone_number",
        "waba_id",
        "name",
        "access_token_status",
        "new_access_token",
        "needs_reauthorization",
        "send_read_receipts",
        "auto_assignment",
        "assign_on_reply",
        "unassign_on_resolve",
        *META_STATE_FIELDS,
        "changes_from_meta",
    )
    readonly_fields = ("access_token_status", *META_STATE_FIELDS, "changes_from_meta")

    def rows_of_numbers(self, queryset, *, numbers):
        return queryset.filter(pk__in=[n.pk for n in numbers])

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if obj is not None and not self.has_change_permission(request, obj):
            # A view-only page renders every field read-only; there is nothing to type a token into.
            fields = [name for name in fields if name != "new_access_token"]
        return fields

    def lookup_allowed(self, lookup, value, request=None):
        # The changelist takes any lookup on a local field from its URL: ?access_token__startswith=E… would
        # let anyone who may view numbers read the token one character at a time.
        if lookup.split("__")[0] == "access_token":
            return False
        return super().lookup_allowed(lookup, value, request)

    @admin.display(description="changes from Meta")
    def changes_from_meta(self, obj):
        """The number's latest changes (a read-only list, not an inline: the number's form posts no formset for
        them), and a link to all of them."""
        if obj is None or obj.pk is None:
            return "-"
        latest = AccountChange.objects.filter(number=obj).order_by("-created_at", "-pk")[:CHANGES_SHOWN]
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    c.created_at,
                    c.field,
                    c.get_source_display(),
                    "applied" if c.applied else "older: not applied",
                    c.values,
                )
                for c in latest
            ),
        )
        url = reverse("admin:conversations_accountchange_changelist") + f"?number__id__exact={obj.pk}"
        return format_html('<table>{}</table><a href="{}">All changes of this number</a>', rows, url)

    @admin.display(description="access token")
    def access_token_status(self, obj):
        return describe_access_token(obj.access_token if obj else "")

    # Both write: the check flags or clears needs_reauthorization, the sync replaces the account's templates.
    @admin.action(
        description="Check the connection to Meta (token, number, webhook subscription)", permissions=["change"]
    )
    def check_connection(self, request, queryset):
        for number in queryset:
            health = check_number_health(number=number)
            if not health.token_ok:
                flagged = " The number is flagged for re-authorisation." if number.needs_reauthorization else ""
                self.message_user(request, f"{number}: {health.token_problem}{flagged}", messages.ERROR)
                continue
            profile = health.profile
            resumed = " The re-authorisation flag is cleared: sending resumes." if health.cleared_now else ""
            self.message_user(
                request,
                f"{number}: connected as {profile.verified_name or profile.display_phone_number} "
                f"(quality {profile.quality_rating or 'unknown'}); webhooks: {health.subscription}.{resumed}",
                messages.SUCCESS if health.subscription_ok is not False else messages.WARNING,
            )

    @admin.action(description="Sync message templates from Meta", permissions=["change"])
    def sync_message_templates(self, request, queryset):
        for number in queryset:
            try:
                count = sync_templates(number=number)
            except (GraphError, RetryLater, ValueError) as error:
                self.message_user(request, f"{number}: {error}", messages.ERROR)
            else:
                self.message_user(request, f"{number}: {count} template(s) synced.", messages.SUCCESS)

    @admin.display(boolean=True, description="token set")
    def has_token(self, obj):
        return bool(obj.access_token)


class MessageInline(admin.TabularInline):
    model = Message
    fields = ("timestamp", "direction", "type", "preview", "status")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("-timestamp",)
    max_num = 0
    show_change_link = True


class ActivityInline(admin.TabularInline):
    """The conversation's audit trail: who changed its status or assignee, and when. Append-only."""

    model = ConversationActivity
    fields = ("created_at", "kind", "actor", "details")
    readonly_fields = fields
    extra = 0
    can_delete = False
    max_num = 0
    ordering = ("created_at", "id")


class NoteInline(admin.TabularInline):
    """The team's private notes in the conversation: read here, written in the inbox (which notifies mentions)."""

    model = ConversationNote
    fields = ("created_at", "author", "body")
    readonly_fields = fields
    extra = 0
    can_delete = False
    max_num = 0
    ordering = ("created_at", "id")


@admin.register(Conversation)
class ConversationAdmin(MembersOnlyAdmin):
    list_display = ("id", "contact", "number", "status", "assignee", "last_message_at", "last_message_preview")
    list_filter = (("number", VisibleNumberFilter), "status")
    list_select_related = ("contact", "number", "assignee")
    search_fields = ("contact__profile_name", "contact__custom_name", "contact__wa_id", "contact__phone")
    # A conversation is the thread Meta keeps between one number and one customer: it is not moved to another
    # number or contact (that is a contact merge), nor made up here.
    readonly_fields = (
        "number",
        "contact",
        "last_message_at",
        "last_message_preview",
        "last_message_direction",
        "last_inbound_at",
        # Changed from the inbox or the API, which record each change as an activity.
        "status",
        "snoozed_until",
        "assignee",
    )
    inlines = [ActivityInline, NoteInline, MessageInline]

    def rows_of_numbers(self, queryset, *, numbers):
        return queryset.filter(number_id__in=[n.pk for n in numbers])

    def has_add_permission(self, request):
        return False


@admin.register(Message)
class MessageAdmin(MembersOnlyAdmin):
    list_display = ("id", "timestamp", "direction", "type", "preview", "status", "error_code", "conversation")
    list_filter = ("direction", "status", "type")
    list_select_related = ("conversation__contact", "conversation__number")
    search_fields = ("wamid", "body")
    show_full_result_count = False

    def rows_of_numbers(self, queryset, *, numbers):
        return queryset.filter(conversation__number_id__in=[n.pk for n in numbers])

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(MessageStatusEvent)
class MessageStatusEventAdmin(MembersOnlyAdmin):
    list_display = ("wamid", "status", "timestamp", "error_code", "error_title", "received_at")
    list_filter = ("status",)
    search_fields = ("wamid",)
    show_full_result_count = False

    def rows_of_numbers(self, queryset, *, numbers):
        return queryset.filter(number_id__in=[n.pk for n in numbers])

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Reaction)
class ReactionAdmin(MembersOnlyAdmin):
    list_display = ("message_wamid", "contact", "emoji", "reacted_at")
    list_select_related = ("contact",)

    def rows_of_numbers(self, queryset, *, numbers):
        # A reaction belongs to the number of the message it reacts to; one to a message we never stored,
        # to no number (superusers only).
        reacted_to = Message.objects.filter(
            wamid=OuterRef("message_wamid"), conversation__number_id__in=[n.pk for n in numbers]
        )
        return queryset.filter(Exists(reacted_to))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(MessageTemplate)
class MessageTemplateAdmin(MembersOnlyAdmin):
    list_display = (
        "name", "language", "status", "status_reason", "category", "quality_score", "waba_id", "synced_at",
        "templates_page",
    )  # fmt: skip
    list_filter = ("status", "category", "quality_score", "language")
    search_fields = ("name",)
    actions = ["sync_from_meta"]

    def rows_of_numbers(self, queryset, *, numbers):
        # Templates belong to a WhatsApp Business Account: those of the accounts of the member's numbers.
        return queryset.filter(waba_id__in={n.waba_id for n in numbers if n.waba_id})

    def get_queryset(self, request):
        # The account's first number, for the page link: in the list's one query, not one per row.
        first_number = BusinessNumber.objects.filter(waba_id=OuterRef("waba_id")).order_by("pk").values("pk")[:1]
        return super().get_queryset(request).annotate(page_number_id=Subquery(first_number))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Sync all templates of these WhatsApp Business Accounts from Meta", permissions=["sync"])
    def sync_from_meta(self, request, queryset):
        waba_ids = set(queryset.values_list("waba_id", flat=True))
        # Synced with the token of a number the staff member may see, never another team's.
        numbers = visible_numbers(user=request.user).filter(waba_id__in=waba_ids)
        one_number_per_waba = {n.waba_id: n for n in numbers}
        for number in one_number_per_waba.values():
            try:
                count = sync_templates(number=number)
            except (GraphError, RetryLater, ValueError) as error:
                self.message_user(request, f"{number.waba_id}: {error}", messages.ERROR)
            else:
                self.message_user(request, f"{number.waba_id}: {count} template(s) synced.", messages.SUCCESS)

    @admin.display(description="Templates page")
    def templates_page(self, obj):
        # Any number of the account: the page itself admits only that number's supervisors.
        if obj.page_number_id is None:
            return ""
        url = reverse("number_templates_page", args=[obj.page_number_id])
        return format_html('<a href="{}">Create, edit or delete</a>', url)

    def delete_model(self, request, obj):
        """Deleted at Meta first, through the same service as the API (a supervisor of one of the account's
        numbers); Meta's or our refusal is shown and the template stays."""
        number = supervised_numbers(user=request.user).filter(waba_id=obj.waba_id).order_by("pk").first()
        try:
            if number is None:
                raise WorkflowRefused("not_allowed", "Only a supervisor of one of its numbers can delete it.")
            delete_template(user=request.user, number=number, template=obj)
        except WorkflowRefused as refused:
            self.message_user(request, f"{obj.name} ({obj.language}) was not deleted: {refused.detail}", messages.ERROR)

    def delete_queryset(self, request, queryset):
        for template in queryset:
            self.delete_model(request, template)

    def has_sync_permission(self, request):
        # Templates are never edited here (has_change_permission), but the permission to change them is
        # what a sync needs; superusers have it.
        return request.user.has_perm("conversations.change_messagetemplate")


# Named on the delete pages when a selected contact also talks to a number the staff member may not see.
SHARED_CONTACTS_NOT_DELETABLE = "contacts who also write to business numbers you are not a member of"


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    """Staff may rename and merge; Meta's ids are shown, not edited. Staff who are not superusers see the
    contacts of their numbers, and may rename, merge or delete only those who talk to no other number
    (``selectors.can_change_contact``)."""

    list_display = ("__str__", "phone", "wa_id", "user_id", "username", "profile_name", "custom_name", "updated_at")
    search_fields = ("profile_name", "custom_name", "wa_id", "phone", "user_id", "username")
    readonly_fields = ("wa_id", "user_id", "phone", "username", "profile_name", "created_at", "updated_at")
    fields = ("custom_name", *readonly_fields)
    actions = ["merge_selected"]

    def get_queryset(self, request):
        return visible_contacts(user=request.user, contacts=super().get_queryset(request))

    def has_change_permission(self, request, obj=None):
        # Without it the change page shows the contact read-only and refuses a POST.
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or can_change_contact(user=request.user, contact=obj))

    def has_delete_permission(self, request, obj=None):
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or can_change_contact(user=request.user, contact=obj))

    def get_deleted_objects(self, objs, request):
        # "Delete selected" asks has_delete_permission without an object: name the contacts it may not delete
        # as a missing permission, so the confirmation page lists them and confirming is refused.
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        if any(not can_change_contact(user=request.user, contact=contact) for contact in objs):
            perms_needed = {*perms_needed, SHARED_CONTACTS_NOT_DELETABLE}
        return deleted, counts, perms_needed, protected

    def save_model(self, request, obj, form, change):
        if not change:
            super().save_model(request, obj, form, change)
            return
        try:
            rename_contact(contact=obj, name=obj.custom_name, user=request.user)
        except ContactChangeForbidden as refusal:  # a conversation on another number started meanwhile
            raise PermissionDenied(refusal.detail) from refusal

    @admin.action(
        description="Merge the selected contacts (same person): keep the one who wrote last", permissions=["change"]
    )
    def merge_selected(self, request, queryset):
        contacts = list(queryset)
        if len(contacts) < 2:
            self.message_user(request, "Select at least two contacts to merge.", messages.WARNING)
            return
        try:
            merges = merge_contact_group(contacts=contacts, user=request.user)
        except ContactChangeForbidden as refusal:
            self.message_user(request, f"Nothing merged: {refusal.detail}", messages.ERROR)
            return
        keep = merges[0].keep
        moved = sum(m.messages_moved for m in merges)
        self.message_user(
            request,
            f"Merged {len(merges)} contact(s) into {keep} (#{keep.pk}); {moved} message(s) moved.",
            messages.SUCCESS,
        )


class NumberChoicesAdmin(MembersOnlyAdmin):
    """The ``number`` field offers only the numbers the staff member may see."""

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "number" and not request.user.is_superuser:
            kwargs["queryset"] = BusinessNumber.objects.filter(pk__in=[n.pk for n in members_numbers(request)])
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(Label)
class LabelAdmin(NumberChoicesAdmin):
    list_display = ("name", "colour", "number", "created_at")
    list_filter = (("number", VisibleNumberFilter), "colour")
    list_select_related = ("number",)
    search_fields = ("name",)

    def rows_of_numbers(self, queryset, *, numbers):
        return queryset.filter(number_id__in=[n.pk for n in numbers])


@admin.register(CannedReply)
class CannedReplyAdmin(NumberChoicesAdmin):
    list_display = ("shortcut", "number", "owner", "text")
    list_filter = (("number", VisibleNumberFilter),)
    list_select_related = ("number", "owner")
    search_fields = ("shortcut", "text")

    def get_queryset(self, request):
        # A staff member's own canned replies, and those of the numbers they are members of.
        queryset = admin.ModelAdmin.get_queryset(self, request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(Q(number_id__in=[n.pk for n in members_numbers(request)]) | Q(owner=request.user))


class ReadOnlyAdmin(MembersOnlyAdmin):
    """Rows written only by the inbox's services (which publish and notify): viewed here, never added or changed."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ConversationNote)
class ConversationNoteAdmin(ReadOnlyAdmin):
    list_display = ("id", "created_at", "author", "conversation", "body")
    list_filter = (("conversation__number", VisibleNumberFilter),)
    list_select_related = ("author", "conversation__contact", "conversation__number")
    search_fields = ("body",)
    show_full_result_count = False

    def rows_of_numbers(self, queryset, *, numbers):
        return queryset.filter(conversation__number_id__in=[n.pk for n in numbers])


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ("id", "created_at", "recipient", "kind", "actor", "conversation", "read_at")
    list_filter = ("kind", ("conversation__number", VisibleNumberFilter))
    list_select_related = ("recipient", "actor", "conversation__contact", "conversation__number")
    show_full_result_count = False

    def rows_of_numbers(self, queryset, *, numbers):
        # A mention is of a conversation's number; a number alert's notification of the alert's.
        ids = [n.pk for n in numbers]
        return queryset.filter(Q(conversation__number_id__in=ids) | Q(alert__number_id__in=ids))


def _accounts_of(numbers) -> set[str]:
    return {n.waba_id for n in numbers if n.waba_id}


@admin.register(AccountChange)
class AccountChangeAdmin(ReadOnlyAdmin):
    """Every change Meta announced (or the poll found), filterable by number; account-wide ones (no number) are
    shown to the members of any of the account's numbers."""

    list_display = ("created_at", "field", "number", "waba_id", "source", "applied", "occurred_at", "webhook_event")
    list_filter = (("number", VisibleNumberFilter), "field", "source", "applied")
    list_select_related = ("number",)
    readonly_fields = ("waba_id", "number", *ACCOUNT_CHANGE_FIELDS, "raw")
    show_full_result_count = False

    def rows_of_numbers(self, queryset, *, numbers):
        return queryset.filter(
            Q(number_id__in=[n.pk for n in numbers]) | Q(number__isnull=True, waba_id__in=_accounts_of(numbers))
        )


@admin.register(BusinessAccount)
class BusinessAccountAdmin(ReadOnlyAdmin):
    list_display = ("waba_id", "status_event", "messaging_limit", "max_phone_numbers", "ban_state", "violation_type")

    def rows_of_numbers(self, queryset, *, numbers):
        return queryset.filter(waba_id__in=_accounts_of(numbers))


@admin.register(RateCardEntry)
class RateCardEntryAdmin(admin.ModelAdmin):
    """Meta's rates, also loaded in bulk with ``manage.py load_rate_card``; the cost page prices with them."""

    list_display = ("market", "category", "price", "currency", "valid_from", "valid_until")
    list_filter = ("category", "currency")
    search_fields = ("market",)
    ordering = ("market", "category", "-valid_from")
