"""Admin for webhook events: state, errors, the raw payload (read-only) and a replay action. Staff who are not
superusers see only the events addressed to their numbers; events for no known number, only superusers."""

import json

from django.contrib import admin, messages
from django.utils.html import format_html

from conversations.admin import MembersOnlyAdmin
from webhooks.models import WebhookEvent
from webhooks.services import replay_webhook_events


class HasItemErrorsFilter(admin.SimpleListFilter):
    title = "item errors"
    parameter_name = "item_errors"

    def lookups(self, request, model_admin):
        return (("yes", "With item errors"), ("no", "Without"))

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.exclude(item_errors=[])
        if self.value() == "no":
            return queryset.filter(item_errors=[])
        return queryset


@admin.register(WebhookEvent)
class WebhookEventAdmin(MembersOnlyAdmin):
    list_display = ("id", "received_at", "state", "phone_number_id", "attempts", "item_error_count", "processed_at")
    list_filter = ("state", HasItemErrorsFilter, "phone_number_id")
    search_fields = ("=id", "phone_number_id")
    date_hierarchy = "received_at"
    show_full_result_count = False
    actions = ["replay"]
    exclude = ("raw_body",)
    readonly_fields = (
        "received_at",
        "state",
        "phone_number_id",
        "attempts",
        "processed_at",
        "error",
        "formatted_item_errors",
        "signature",
        "formatted_payload",
    )

    def rows_of_numbers(self, queryset, *, numbers):
        return queryset.filter(phone_number_id__in=[n.phone_number_id for n in numbers])

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="payload")
    def formatted_payload(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.payload, indent=2, ensure_ascii=False))

    @admin.display(description="item errors")
    def formatted_item_errors(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.item_errors, indent=2, ensure_ascii=False))

    @admin.action(description="Replay selected events", permissions=["replay"])
    def replay(self, request, queryset):
        count = replay_webhook_events(event_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{count} event(s) queued for processing again.", messages.SUCCESS)

    def has_replay_permission(self, request):
        return request.user.is_superuser or request.user.has_perm("webhooks.change_webhookevent")
