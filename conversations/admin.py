"""Admin for numbers, conversations and messages (messages are read-only: they are Meta's record)."""
from django import forms
from django.contrib import admin

from conversations.models import BusinessNumber, Conversation, Message, MessageStatusEvent, Reaction


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
