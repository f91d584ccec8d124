"""Admin for contacts: staff may rename and merge; Meta's ids are shown, not edited. Staff who are not
superusers see the contacts of their numbers, and may rename, merge or delete only those who talk to no
other number (``selectors.can_change_contact``)."""
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied

from contacts.models import Contact
from contacts.selectors import can_change_contact, visible_contacts
from contacts.services import ContactChangeForbidden, merge_contact_group, rename_contact

# Named on the delete pages when a selected contact also talks to a number the staff member may not see.
SHARED_CONTACTS_NOT_DELETABLE = "contacts who also write to business numbers you are not a member of"


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
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

    @admin.action(description="Merge the selected contacts (same person): keep the one who wrote last", permissions=["change"])
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
