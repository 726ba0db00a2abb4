"""Call pages of the owner dashboard: the filtered list (+ CSV export), one call's detail, analytics.

Members of the shop (owners and staff) see these; caller numbers are masked everywhere.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from calls import charts, selectors
from calls.forms import AnalyticsRangeForm, CallFilterForm
from calls.models import CallLog
from shops.phones import mask
from shops.selectors import get_membership_for_user
from shops.views import DashboardRequest, render_shop_page

PAGE_SIZE = 50


@login_required
@require_GET
def call_list(request: DashboardRequest, slug: str) -> HttpResponse:
    membership = get_membership_for_user(request.user, slug)
    shop = membership.shop
    form = CallFilterForm(request.GET or None)
    filters = form.filters()
    qs = selectors.calls_for_shop(shop, filters)
    page = selectors.keyset_page(
        qs,
        older=request.GET.get("older", ""),
        newer=request.GET.get("newer", ""),
        size=PAGE_SIZE,
        count=filters == selectors.CallFilters(),  # unfiltered only: see keyset_page
    )
    query = request.GET.copy()
    for key in ("older", "newer"):
        query.pop(key, None)
    context = {"form": form, "page": page, "query": query.urlencode(), "shop": shop}
    if request.htmx and request.htmx.target == "call-results":
        return render(request, "calls/list.html#results", context)
    return render_shop_page(request, "calls/list.html", membership, "calls", context)


@login_required
@require_GET
def call_detail(request: DashboardRequest, slug: str, pk: int) -> HttpResponse:
    call = selectors.get_call_for_user(request.user, slug, pk)
    membership = get_membership_for_user(request.user, slug)
    context = {
        "call": call,
        "turns": list(call.turns.all()),
        "tool_calls": list(call.tool_calls.all()),
    }
    return render_shop_page(request, "calls/detail.html", membership, "calls", context)


# ---------------------------------------------------------------------------------------------
# CSV export
# ---------------------------------------------------------------------------------------------
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def escape_formula(value: str) -> str:
    """Neutralise a cell a spreadsheet would run as a formula (CSV injection): prefix it with '."""
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


class _Echo:
    def write(self, value: str) -> str:
        return value


EXPORT_HEADER = [
    "started_at",
    "channel",
    "caller",
    "duration_seconds",
    "intent",
    "outcome",
    "engine",
    "first_response_ms",
    "callback_requested",
    "summary",
]


def _export_rows(qs: Any, tz: Any) -> Iterator[list[str]]:
    yield EXPORT_HEADER
    outcomes = dict(CallLog.Outcome.choices)
    for call in qs.iterator(chunk_size=2000):
        row = [
            timezone.localtime(call.started_at, tz).strftime("%Y-%m-%d %H:%M:%S"),
            call.channel,
            mask(call.caller_number),
            "" if call.duration_seconds is None else str(call.duration_seconds),
            call.intent,
            outcomes.get(call.outcome, call.outcome),
            call.engine,
            "" if call.first_response_ms is None else str(call.first_response_ms),
            "yes" if call.callback_number or call.outcome == CallLog.Outcome.CALLBACK_REQUESTED else "",
            call.summary,
        ]
        yield [escape_formula(cell) for cell in row]


@login_required
@require_GET
def call_export(request: DashboardRequest, slug: str) -> StreamingHttpResponse:
    """The filtered list as CSV, streamed (100,000 calls don't sit in memory)."""
    membership = get_membership_for_user(request.user, slug)
    shop = membership.shop
    form = CallFilterForm(request.GET or None)
    qs = selectors.calls_for_shop(shop, form.filters()).only(*selectors.LIST_COLUMNS)
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (writer.writerow(row) for row in _export_rows(qs, shop.tz)), content_type="text/csv; charset=utf-8"
    )
    stamp = timezone.localtime(timezone.now(), shop.tz).strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="{shop.slug}-calls-{stamp}.csv"'
    return response


# ---------------------------------------------------------------------------------------------
# Analytics
# ---------------------------------------------------------------------------------------------
@login_required
@require_GET
def analytics(request: DashboardRequest, slug: str) -> HttpResponse:
    membership = get_membership_for_user(request.user, slug)
    shop = membership.shop
    form = AnalyticsRangeForm(request.GET or None, initial={"range": "30"})
    start, end = form.dates(shop.local_now().date())
    data = selectors.analytics_for_shop(shop, start, end)
    per_day = charts.column_chart(
        [(d.strftime("%b %-d"), n) for d, n in data.per_day], title=f"Calls per day, {start:%b %-d} – {end:%b %-d}"
    )
    intents = charts.bar_list([(i.replace("_", " ").title(), n) for i, n in data.by_intent], title="Calls by intent")
    outcomes = charts.bar_list([(label, n) for _v, label, n in data.by_outcome], title="Calls by outcome")
    context = {
        "form": form,
        "data": data,
        "per_day": per_day,
        "intents": intents,
        "outcomes": outcomes,
        "resolved_share": data.outcome_share(CallLog.Outcome.RESOLVED),
        "transferred_share": data.outcome_share(CallLog.Outcome.TRANSFERRED),
        "hung_up_share": data.outcome_share(CallLog.Outcome.CALLER_HUNG_UP),
    }
    if request.htmx and request.htmx.target == "analytics-results":
        return render(request, "calls/analytics.html#results", context)
    return render_shop_page(request, "calls/analytics.html", membership, "analytics", context)
