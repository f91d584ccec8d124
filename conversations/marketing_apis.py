"""``GET``/``PUT /api/conversations/<id>/marketing/``: whether the conversation's contact stopped marketing from its
number, as Meta said or as staff marked it, for the number's members (anyone else: 404, as for the conversation)."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from config.openapi import ErrorOut, PersonOut
from conversations import selectors
from conversations.apis import conversation_or_404
from conversations.models import MarketingPreference
from conversations.services.marketing import set_marketing_preference
from conversations.snapshots import person_snapshot
from conversations.workflow_apis import valid_data

MarketingOut = inline_serializer(
    "MarketingPreference",
    fields={
        "opted_out": serializers.BooleanField(allow_null=True, help_text="null: never said"),
        "changed_at": serializers.DateTimeField(allow_null=True),
        "changed_by": PersonOut,
        "source": serializers.ChoiceField(choices=["meta", "staff"], allow_null=True),
    },
)


class MarketingInput(serializers.Serializer):
    opted_out = serializers.BooleanField()


def marketing_snapshot(preference: MarketingPreference | None) -> dict:
    if preference is None:
        return {"opted_out": None, "changed_at": None, "changed_by": None, "source": None}
    return {
        "opted_out": preference.opted_out,
        "changed_at": preference.changed_at,
        "changed_by": person_snapshot(preference.changed_by),
        "source": "staff" if preference.changed_by_id else "meta",
    }


class ConversationMarketingApi(APIView):
    """``GET``: the contact's marketing choice on this number; ``PUT {"opted_out"}``: staff mark it."""

    @extend_schema(responses={200: MarketingOut, 401: ErrorOut, 404: ErrorOut})
    def get(self, request, conversation_id: int):
        conversation = conversation_or_404(request, conversation_id)
        preference = selectors.marketing_preference(conversation=conversation)
        return Response(MarketingOut.__class__(marketing_snapshot(preference)).data)

    @extend_schema(request=MarketingInput, responses={200: MarketingOut, 400: ErrorOut, 401: ErrorOut, 404: ErrorOut})
    def put(self, request, conversation_id: int):
        conversation = conversation_or_404(request, conversation_id)
        preference = set_marketing_preference(
            user=request.user,
            number=conversation.number,
            contact=conversation.contact,
            opted_out=valid_data(MarketingInput, request)["opted_out"],
        )
        return Response(MarketingOut.__class__(marketing_snapshot(preference)).data)
