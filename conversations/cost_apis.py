"""``GET /api/numbers/<id>/costs/?month=YYYY-MM``: the number's billable messages of a month priced with the rate
card, as its cost page shows them, for the number's supervisors (a member who is not one: 403; anyone else: 404)."""

from datetime import date

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from config.openapi import ErrorOut
from conversations import selectors
from conversations.services.errors import WorkflowRefused
from conversations.workflow_apis import supervised_number_or_404


def _total() -> dict:
    """Fresh fields each time: a DRF field belongs to one serializer."""
    return {"count": serializers.IntegerField(), "amount": serializers.DecimalField(max_digits=18, decimal_places=6)}


NumberCostsOut = inline_serializer(
    "NumberCosts",
    fields={
        "number_id": serializers.IntegerField(),
        "month": serializers.CharField(help_text="YYYY-MM (UTC)"),
        "currency": serializers.CharField(allow_blank=True, help_text="the rates' currency (comma-separated if mixed)"),
        "total": inline_serializer("CostTotal", fields=_total()),
        "by_category": inline_serializer(
            "CostByCategory", fields={"category": serializers.CharField(), **_total()}, many=True
        ),
        "by_day": inline_serializer("CostByDay", fields={"day": serializers.DateField(), **_total()}, many=True),
        "rows": inline_serializer(
            "CostRow",
            fields={"day": serializers.DateField(), "category": serializers.CharField(), **_total()},
            many=True,
        ),
        "no_rate": inline_serializer(
            "CostNoRate",
            fields={"category": serializers.CharField(), "count": serializers.IntegerField()},
            many=True,
        ),
    },
)


def parse_month(value: str | None) -> date:
    """``YYYY-MM`` as its first day; this month when absent; a 400 on ``month`` otherwise."""
    if not value:
        return date.today().replace(day=1)
    try:
        year, month = value.split("-")
        if len(year) != 4 or len(month) != 2:
            raise ValueError
        return date(int(year), int(month), 1)
    except ValueError:
        raise WorkflowRefused("invalid", "Give the month as YYYY-MM.", field="month") from None


def number_costs_for(request, number_id: int):
    number = supervised_number_or_404(request, number_id, to="see its costs")
    return number, selectors.number_costs(number=number, month=parse_month(request.GET.get("month")))


class NumberCostsApi(APIView):
    """``GET``: the month's billable messages and amounts by category and by day, and those with no rate."""

    @extend_schema(
        parameters=[OpenApiParameter("month", str, description="YYYY-MM; this month when absent")],
        responses={200: NumberCostsOut, 400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut},
    )
    def get(self, request, number_id: int):
        _, costs = number_costs_for(request, number_id)
        return Response(NumberCostsOut.__class__(costs).data)
