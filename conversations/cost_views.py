"""A number's cost page (``/numbers/<id>/costs/?month=YYYY-MM``, ``&format=csv`` for its rows), for its
supervisors, with the figures of ``GET /api/numbers/<id>/costs/``."""

import csv
from datetime import date

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render

from conversations.cost_apis import number_costs_for
from conversations.services.errors import WorkflowRefused

CHART_WIDTH, CHART_HEIGHT = 620, 120


def cost_chart(by_day: list[dict], days: int) -> list[dict]:
    """One bar per day with billable messages, its height by the day's amount (the tallest fills the chart)."""
    top = max((d["amount"] for d in by_day), default=0) or 1
    step = CHART_WIDTH / days
    return [
        {
            "x": round((d["day"].day - 1) * step + 1, 1),
            "width": round(max(step - 2, 1), 1),
            "height": round(float(d["amount"] / top) * (CHART_HEIGHT - 10), 1),
            "y": round(CHART_HEIGHT - float(d["amount"] / top) * (CHART_HEIGHT - 10), 1),
            "label": f"{d['day']:%d %b}: {d['count']} message(s), {d['amount']}",
        }
        for d in by_day
    ]


@login_required
def number_costs_view(request, number_id: int):
    try:
        number, costs = number_costs_for(request, number_id)
    except WorkflowRefused as refused:
        if refused.status == 403:
            raise PermissionDenied from None
        if refused.status == 400:
            return HttpResponseBadRequest(refused.detail)
        raise Http404 from None
    if request.GET.get("format") == "csv":
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="costs-{number.pk}-{costs["month"]}.csv"'
        writer = csv.writer(response)
        writer.writerow(["day", "category", "count", "amount", "currency"])
        for row in costs["rows"]:
            writer.writerow([row["day"].isoformat(), row["category"], row["count"], row["amount"], costs["currency"]])
        return response
    year, month = (int(part) for part in costs["month"].split("-"))
    days = (date(year + month // 12, month % 12 + 1, 1) - date(year, month, 1)).days
    return render(
        request,
        "conversations/number_costs.html",
        {
            "number": number,
            "costs": costs,
            "bars": cost_chart(costs["by_day"], days),
            "chart_width": CHART_WIDTH,
            "chart_height": CHART_HEIGHT,
        },
    )
