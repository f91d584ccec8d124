"""Admin for numbers, conversations and messages (messages are read-only: they are Meta's record)."""
from django import forms
from django.contrib import admin, messages

from conversations.graph_api import GraphError
from conversations.models import BusinessNumber, Conversation, Message, MessageStatusEvent, MessageTemplate, Reaction
from conversations.services.errors import RetryLater
from conversations.services.numbers import check_number_health
from conversations.services.templates import sync_templates


class BusinessNumberForm(forms.ModelForm):
    # Write-only: the stored token is never rendered back into the page.
    access_token = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Leave empty to keep the current token.",
    )

    class Meta:
        model = BusinessNumber
        fields = "__all__"

    def clean_access_token(self):
        token = self.cleaned_data.get("access_token", "")
        return token or (self.instance.access_token if self.instance.pk else "")


@admin.register(BusinessNumber)
class BusinessNumberAdmin(admin.ModelAdmin):
    form = BusinessNumberForm
    list_display = ("display_phone_number", "name", "phone_number_id", "waba_id", "has_token", "needs_reauthorization")
    list_filter = ("needs_reauthorization",)
    search_fields = ("display_phone_number", "name", "phone_number_id")
    filter_horizontal = ("members",)
    actions = ["check_connection", "sync_message_templates"]

    def save_model(self, request, obj, form, change):
        if "access_token" in form.changed_data and form.cleaned_data.get("access_token"):
            # A new token is the fix for Meta's 190: sending resumes.
            obj.needs_reauthorization = False
        super().save_model(request, obj, form, change)

    @admin.action(description="Check the connection to Meta (token, number, webhook subscription)")
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

    @admin.action(description="Sync message templates from Meta")
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


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ("id", "contact", "number", "last_message_at", "last_message_preview")
    list_filter = ("number",)
    list_select_related = ("contact", "number")
    search_fields = ("contact__profile_name", "contact__custom_name", "contact__wa_id", "contact__phone")
    raw_id_fields = ("contact",)
    readonly_fields = ("last_message_at", "last_message_preview", "last_message_direction", "last_inbound_at")
    inlines = [MessageInline]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("id", "timestamp", "direction", "type", "preview", "status", "error_code", "conversation")
    list_filter = ("direction", "status", "type")
    list_select_related = ("conversation__contact", "conversation__number")
    search_fields = ("wamid", "body")
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(MessageStatusEvent)
class MessageStatusEventAdmin(admin.ModelAdmin):
    list_display = ("wamid", "status", "timestamp", "error_code", "error_title", "received_at")
    list_filter = ("status",)
    search_fields = ("wamid",)
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Reaction)
class ReactionAdmin(admin.ModelAdmin):
    list_display = ("message_wamid", "contact", "emoji", "reacted_at")
    list_select_related = ("contact",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(MessageTemplate)
class MessageTemplateAdmin(admin.ModelAdmin):
    list_display = ("name", "language", "status", "category", "waba_id", "synced_at")
    list_filter = ("status", "category", "language")
    search_fields = ("name",)
    actions = ["sync_from_meta"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Sync all templates of these WhatsApp Business Accounts from Meta")
    def sync_from_meta(self, request, queryset):
        waba_ids = set(queryset.values_list("waba_id", flat=True))
        one_number_per_waba = {n.waba_id: n for n in BusinessNumber.objects.filter(waba_id__in=waba_ids)}
        for number in one_number_per_waba.values():
            try:
                count = sync_templates(number=number)
            except (GraphError, RetryLater, ValueError) as error:
                self.message_user(request, f"{number.waba_id}: {error}", messages.ERROR)
            else:
                self.message_user(request, f"{number.waba_id}: {count} template(s) synced.", messages.SUCCESS)
