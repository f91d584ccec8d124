"""Every webhook delivery Meta made to us, stored raw before anything interprets it."""

from functools import cached_property
from typing import Any

from django.db import models

from webhooks.payloads import load_stored_body


class WebhookEventState(models.TextChoices):
    PENDING = "pending", "Pending"
    PROCESSED = "processed", "Processed"
    # No change in the delivery was for a business number we know.
    UNROUTABLE = "unroutable", "Unroutable"
    # The whole event could not be processed after every retry (item errors do not make an event failed).
    FAILED = "failed", "Failed"


class WebhookEvent(models.Model):
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # The raw body exactly as signed by Meta, so an event can be re-verified and replayed verbatim. It is
    # the only copy: the webhook stores text and the worker parses it (a JSONB copy cost the webhook a
    # json.dumps and PostgreSQL a parse, and refused deliveries whose strings held \u0000).
    raw_body = models.TextField()
    signature = models.CharField(max_length=100, blank=True, default="")
    state = models.CharField(max_length=12, choices=WebhookEventState.choices, default=WebhookEventState.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    processed_at = models.DateTimeField(null=True, blank=True)
    # Whole-event failure (after retries): the exception text.
    error = models.TextField(blank=True, default="")
    # One entry per item that could not be applied: {"path": "entry[0].changes[1].messages[3]", "error": "..."}.
    item_errors = models.JSONField(default=list, blank=True)
    # The business number the delivery was addressed to (the first one, for the rare multi-number batch).
    # Indexed in Meta.indexes, not with db_index: on PostgreSQL that would add a varchar_pattern_ops copy
    # for LIKE 'prefix%', which nothing asks and every delivery paid for (migration 0006).
    phone_number_id = models.CharField(max_length=64, blank=True, default="")
    # The id of the HTTP request that delivered it: processing logs under the same id, across processes.
    # A database default too, so rows inserted by code that predates the column (a rolling deploy) still fit.
    request_id = models.CharField(max_length=64, blank=True, default="", db_default="")

    class Meta:
        indexes = [
            models.Index(fields=["state", "received_at"], name="webhook_event_state"),
            # Routing, the admin's filter and the health checks compare whole ids.
            models.Index(fields=["phone_number_id"], name="webhook_event_number"),
            # The drains' queue: only pending rows, in arrival (id) order; it stays as small as the backlog.
            models.Index(fields=["id"], condition=models.Q(state="pending"), name="webhook_event_pending"),
        ]

    def __str__(self) -> str:
        return f"webhook event {self.pk} ({self.state})"

    @cached_property
    def payload(self) -> dict[str, Any]:
        return load_stored_body(self.raw_body)

    @property
    def item_error_count(self) -> int:
        return len(self.item_errors)
