"""Admin for contacts: staff may rename; Meta's ids are shown, not edited."""
from django.contrib import admin, messages

from contacts.models import Contact
from contacts.services import merge_contact_group


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ("__str__", "phone", "wa_id", "user_id", "username", "profile_name", "custom_name", "updated_at")
    search_fields = ("profile_name", "custom_name", "wa_id", "phone", "user_id", "username")
    readonly_fields = ("wa_id", "user_id", "phone", "username", "profile_name", "created_at", "updated_at")
    fields = ("custom_name", *readonly_fields)
    actions = ["merge_selected"]

    @admin.action(description="Merge the selected contacts (same person): keep the one who wrote last")
    def merge_selected(self, request, queryset):
        contacts = list(queryset)
        if len(contacts) < 2:
            self.message_user(request, "Select at least two contacts to merge.", messages.WARNING)
            return
        merges = merge_contact_group(contacts=contacts)
        keep = merges[0].keep
        moved = sum(m.messages_moved for m in merges)
        self.message_user(
            request,
            f"Merged {len(merges)} contact(s) into {keep} (#{keep.pk}); {moved} message(s) moved.",
            messages.SUCCESS,
        )
