"""WhatsApp users who write to the business: one row per person, keyed by wa_id and/or BSUID."""

import phonenumbers
from django.db import models
from django.db.models import Q


class Contact(models.Model):
    # Meta's wa_id exactly as received (digits, no '+'); absent for username users who hide their phone.
    wa_id = models.CharField(max_length=32, null=True, blank=True)
    # Meta's business-scoped user id (BSUID, 2026+), e.g. "US.13491208655302741918".
    user_id = models.CharField(max_length=160, null=True, blank=True)
    username = models.CharField(max_length=64, blank=True, default="")
    # E.164 with '+', derived from wa_id; kept even when `phonenumbers` calls it invalid.
    phone = models.CharField(max_length=20, null=True, blank=True, db_index=True)
    profile_name = models.CharField(max_length=256, blank=True, default="")
    # Set by staff; wins over the WhatsApp profile name.
    custom_name = models.CharField(max_length=256, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["wa_id"], condition=Q(wa_id__isnull=False), name="contact_unique_wa_id"),
            models.UniqueConstraint(
                fields=["user_id"], condition=Q(user_id__isnull=False), name="contact_unique_user_id"
            ),
            models.CheckConstraint(
                condition=Q(wa_id__isnull=False) | Q(user_id__isnull=False), name="contact_has_identity"
            ),
        ]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        return self.custom_name or self.profile_name or self.formatted_phone or self.username or self.user_id or ""

    @property
    def formatted_phone(self) -> str:
        if not self.phone:
            return ""
        try:
            parsed = phonenumbers.parse(self.phone, None)
        except phonenumbers.NumberParseException:
            return self.phone
        if not phonenumbers.is_possible_number(parsed):
            return self.phone
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
