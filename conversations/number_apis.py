"""``GET /api/numbers/<id>/health/``: a number's health, as its card on the Numbers page shows it, for the
number's supervisors (a member who is not one: 403; anyone else: 404, as for any number they do not see)."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from config.openapi import ErrorOut
from conversations import selectors
from conversations.models import BusinessNumber
from conversations.workflow_apis import supervised_number_or_404

AlertOut = inline_serializer(
    "NumberAlert",
    fields={
        "id": serializers.IntegerField(),
        "number_id": serializers.IntegerField(),
        "kind": serializers.ChoiceField(choices=["quality", "account", "template"]),
        "condition": serializers.CharField(help_text="what Meta said: RED, FLAGGED, ACCOUNT_RESTRICTION, PAUSED, ..."),
        "title": serializers.CharField(),
        "advice": serializers.CharField(help_text="what to do, in plain words"),
        "detail": serializers.CharField(allow_blank=True, help_text="Meta's own words, when it sent some"),
        "template": serializers.CharField(allow_blank=True, help_text='"name (language)" of a template alert'),
        "raised_at": serializers.DateTimeField(),
    },
)

NumberHealthOut = inline_serializer(
    "NumberHealth",
    fields={
        "id": serializers.IntegerField(),
        "name": serializers.CharField(allow_blank=True),
        "display_phone_number": serializers.CharField(),
        "verified_name": serializers.CharField(allow_blank=True),
        "meta_status": serializers.CharField(allow_blank=True, help_text="CONNECTED, FLAGGED, RESTRICTED, ..."),
        "name_status": serializers.CharField(allow_blank=True),
        "quality": inline_serializer(
            "NumberQuality",
            fields={
                "rating": serializers.CharField(allow_blank=True, help_text="GREEN, YELLOW, RED, UNKNOWN, NA"),
                "event": serializers.CharField(allow_blank=True, help_text="the last quality update's event"),
                "score": serializers.IntegerField(help_text="GREEN 3, YELLOW 2, RED 1, not rated 0"),
                "updated_at": serializers.DateTimeField(allow_null=True),
                "history": inline_serializer(
                    "QualityPoint",
                    fields={
                        "at": serializers.DateTimeField(),
                        "quality": serializers.CharField(),
                        "score": serializers.IntegerField(),
                    },
                    many=True,
                ),
            },
        ),
        "messaging_limit": inline_serializer(
            "MessagingLimit",
            fields={
                "tier": serializers.CharField(allow_blank=True, help_text="the portfolio's: TIER_2K, ..."),
                "limit": serializers.IntegerField(allow_null=True, help_text="customers a day; null: unlimited"),
                "used_24h": serializers.IntegerField(
                    help_text="distinct customers sent a template in the last 24 hours by the account's numbers"
                ),
            },
        ),
        "throughput_level": serializers.CharField(allow_blank=True),
        "phone_app": serializers.CharField(help_text="whether the WhatsApp Business app answers on the number too"),
        "history": serializers.CharField(help_text="where the import of the phone app's past chats stands"),
        "account": inline_serializer(
            "NumberAccountState",
            fields={
                "waba_id": serializers.CharField(allow_blank=True),
                "status_event": serializers.CharField(allow_blank=True),
                "restricted": serializers.BooleanField(),
                "ban_state": serializers.CharField(allow_blank=True),
                "review_decision": serializers.CharField(allow_blank=True),
            },
        ),
        "webhook_backlog": serializers.IntegerField(help_text="webhook deliveries for it not yet processed"),
        "last_inbound_at": serializers.DateTimeField(allow_null=True),
        "last_outbound_at": serializers.DateTimeField(allow_null=True),
        "templates": inline_serializer(
            "NumberTemplates",
            fields={
                "counts": serializers.DictField(child=serializers.IntegerField(), help_text="by status"),
                "items": inline_serializer(
                    "NumberTemplate",
                    fields={
                        "id": serializers.IntegerField(),
                        "name": serializers.CharField(),
                        "language": serializers.CharField(),
                        "status": serializers.CharField(allow_blank=True),
                        "category": serializers.CharField(allow_blank=True),
                        "quality_score": serializers.CharField(allow_blank=True),
                        "stopped": serializers.BooleanField(help_text="paused, disabled or rejected"),
                    },
                    many=True,
                ),
            },
        ),
        "alerts": AlertOut.__class__(many=True),
    },
)


class NumberHealthApi(APIView):
    """``GET``: the number's health (quality and its history, limit and its use, backlog, templates, alerts)."""

    @extend_schema(responses={200: NumberHealthOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut})
    def get(self, request, number_id: int):
        number = supervised_number_or_404(request, number_id, to="see its health")
        (health,) = selectors.number_health(numbers=BusinessNumber.objects.filter(pk=number.pk))
        return Response(health)
