"""Admin for contacts: staff may rename; Meta's ids are shown, not edited."""
from django.contrib import admin

from contacts.models import Contact


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ("__str__", "phone", "wa_id", "user_id", "username", "profile_name", "custom_name", "updated_at")
    search_fields = ("profile_name", "custom_name", "wa_id", "phone", "user_id", "username")
    readonly_fields = ("wa_id", "user_id", "phone", "username", "profile_name", "created_at", "updated_at")
    fields = ("custom_name", *readonly_fields)
