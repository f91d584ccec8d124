"""Conversation workflow: a status (open, pending, snoozed until a time, resolved), an assignee, the activity
log, per-number assignment settings, and members with a role and auto-assignment limits.

The plain many-to-many ``members`` becomes ``NumberMembership`` on the same table: its rows (every existing
membership) stay, the table gains the new columns with their defaults (every member an agent)."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("contacts", "0001_initial"),
        ("conversations", "0005_outbound_recovery"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        # The through model over the many-to-many's own table and columns: no change to the database here.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="NumberMembership",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        (
                            "number",
                            models.ForeignKey(
                                db_column="businessnumber_id",
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="memberships",
                                to="conversations.businessnumber",
                            ),
                        ),
                        (
                            "user",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="number_memberships",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "db_table": "conversations_businessnumber_members",
                        "unique_together": {("number", "user")},
                    },
                ),
                migrations.AlterField(
                    model_name="businessnumber",
                    name="members",
                    field=models.ManyToManyField(
                        blank=True,
                        related_name="business_numbers",
                        through="conversations.NumberMembership",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            database_operations=[],
        ),
        migrations.AddField(
            model_name="numbermembership",
            name="role",
            field=models.CharField(
                choices=[("agent", "Agent"), ("supervisor", "Supervisor")], default="agent", max_length=12
            ),
        ),
        migrations.AddField(
            model_name="numbermembership",
            name="max_open",
            field=models.PositiveIntegerField(default=10, verbose_name="open conversations at most"),
        ),
        migrations.AddField(
            model_name="numbermembership",
            name="away",
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="numbermembership",
            name="last_assigned_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="businessnumber",
            name="assign_on_reply",
            field=models.BooleanField(default=True),
        ),
        migrations.AddField(
            model_name="businessnumber",
            name="auto_assignment",
            field=models.CharField(
                choices=[("off", "Off"), ("round_robin", "Round robin"), ("fewest_open", "Fewest open")],
                default="off",
                max_length=12,
            ),
        ),
        migrations.AddField(
            model_name="businessnumber",
            name="unassign_on_resolve",
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="conversation",
            name="assignee",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="assigned_conversations",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="conversation",
            name="snoozed_until",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="conversation",
            name="status",
            field=models.CharField(
                choices=[("open", "Open"), ("pending", "Pending"), ("snoozed", "Snoozed"), ("resolved", "Resolved")],
                db_default="open",
                default="open",
                max_length=10,
            ),
        ),
        migrations.AddIndex(
            model_name="conversation",
            index=models.Index(
                condition=models.Q(("status", "snoozed")), fields=["snoozed_until"], name="conversation_snoozed"
            ),
        ),
        migrations.AddIndex(
            model_name="conversation",
            index=models.Index(
                condition=models.Q(("assignee__isnull", False), ("status__in", ("open", "pending"))),
                fields=["assignee", "number"],
                name="conversation_assignee_active",
            ),
        ),
        migrations.AddConstraint(
            model_name="conversation",
            constraint=models.CheckConstraint(
                condition=models.Q(("status__in", ["open", "pending", "snoozed", "resolved"])),
                name="conversation_status_known",
            ),
        ),
        migrations.AddConstraint(
            model_name="conversation",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("snoozed_until__isnull", False), ("status", "snoozed")),
                    models.Q(models.Q(("status", "snoozed"), _negated=True), ("snoozed_until__isnull", True)),
                    _connector="OR",
                ),
                name="conversation_snoozed_until_iff_snoozed",
            ),
        ),
        migrations.CreateModel(
            name="ConversationActivity",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "kind",
                    models.CharField(
                        choices=[("status", "Status changed"), ("assignment", "Assignment changed")], max_length=12
                    ),
                ),
                ("details", models.JSONField(default=dict)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "actor",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "conversation",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="activities",
                        to="conversations.conversation",
                    ),
                ),
            ],
            options={
                "verbose_name_plural": "conversation activities",
                "indexes": [models.Index(fields=["conversation", "created_at", "id"], name="activity_thread_order")],
            },
        ),
    ]
