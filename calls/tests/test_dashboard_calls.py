from __future__ import annotations

import csv
import datetime as dt
import io
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from calls.models import CallLog, CallTurn, ToolCall
from calls.tests.factories import CallLogFactory
from shops.tests.factories import BusinessHoursFactory, MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(client):
    membership = MembershipFactory(shop__timezone="America/Chicago")
    client.force_login(membership.user)
    return membership


def list_url(shop, **params):
    from urllib.parse import urlencode

    return reverse("calls:list", kwargs={"slug": shop.slug}) + ("?" + urlencode(params) if params else "")


def test_it_lists_calls_with_masked_numbers(client, owner):
    CallLogFactory(shop=owner.shop, caller_number="+15555550123", summary="Asked about the Civic")
    html = client.get(list_url(owner.shop)).content.decode()
    assert "•••0123" in html
    assert "+15555550123" not in html
    assert "Asked about the Civic" in html


def test_it_filters_by_intent_outcome_channel_and_dates(client, owner):
    shop = owner.shop
    now = timezone.now()
    CallLogFactory(shop=shop, intent="GET_HOURS", outcome="resolved", channel="phone", summary="hours-call")
    CallLogFactory(shop=shop, intent="CHECK_STATUS", outcome="transferred", channel="chat", summary="status-call")
    CallLogFactory(shop=shop, started_at=now - dt.timedelta(days=10), summary="old-call")
    assert "hours-call" in client.get(list_url(shop, intent="GET_HOURS")).content.decode()
    assert "status-call" not in client.get(list_url(shop, intent="GET_HOURS")).content.decode()
    assert "status-call" in client.get(list_url(shop, outcome="transferred")).content.decode()
    assert "hours-call" not in client.get(list_url(shop, channel="chat")).content.decode()
    recent = client.get(list_url(shop, date_from=(now - dt.timedelta(days=2)).date().isoformat())).content.decode()
    assert "old-call" not in recent and "hours-call" in recent


def test_it_searches_last_four_digits_and_summary_words(client, owner):
    shop = owner.shop
    CallLogFactory(shop=shop, caller_number="+15555554321", summary="first caller")
    CallLogFactory(shop=shop, caller_number="+15555550000", summary="brake pads quote")
    assert "first caller" in client.get(list_url(shop, q="4321")).content.decode()
    assert "brake pads quote" not in client.get(list_url(shop, q="4321")).content.decode()
    html = client.get(list_url(shop, q="brake quote")).content.decode()
    assert "brake pads quote" in html and "first caller" not in html


def test_it_paginates_by_keyset_and_keeps_filters_in_links(client, owner):
    shop = owner.shop
    start = timezone.now() - dt.timedelta(hours=5)
    for i in range(120):
        CallLogFactory(shop=shop, started_at=start + dt.timedelta(minutes=i), summary=f"call-{i:03d}", channel="phone")
    first = client.get(list_url(shop, channel="phone"))
    page = first.context["page"]
    assert [c.summary for c in page.rows][:2] == ["call-119", "call-118"]
    assert page.older and not page.newer
    assert "channel=phone&amp;older=" in first.content.decode()
    second = client.get(
        list_url(shop, channel="phone", older=page.older), headers={"HX-Request": "true", "HX-Target": "call-results"}
    ).content.decode()
    assert "<html" not in second  # the fragment only
    assert second.index("call-069") < second.index("call-068") and "call-070" not in second
    newer = re.search(r"newer=([0-9.]+)", second).group(1)
    back = client.get(list_url(shop, channel="phone", newer=newer)).context["page"]
    assert back.rows[0].summary == "call-119"


def test_it_renders_the_list_in_constant_queries(client, owner, django_assert_max_num_queries):
    shop = owner.shop
    CallLogFactory.create_batch(10, shop=shop)
    with CaptureQueriesContext(connection) as ten:
        client.get(list_url(shop))
    CallLogFactory.create_batch(90, shop=shop)
    with CaptureQueriesContext(connection) as hundred:
        response = client.get(list_url(shop))
    assert len(response.context["page"].rows) == 50
    assert len(ten.captured_queries) == len(hundred.captured_queries)
    with django_assert_max_num_queries(len(ten.captured_queries)):
        client.get(list_url(shop, older=response.context["page"].older))


def test_it_shows_a_call_in_detail(client, owner):
    call = CallLogFactory(
        shop=owner.shop,
        summary="Wanted to know if the Civic is ready",
        engine="local",
        first_response_ms=640,
        outcome="callback_requested",
        callback_name="John",
        callback_number="+15555550123",
        intent="CHECK_STATUS",
    )
    CallTurn.objects.create(call=call, role="caller", text="Is my car ready?", intent="CHECK_STATUS")
    CallTurn.objects.create(call=call, role="assistant", text="Let me check.", latency_ms=640)
    ToolCall.objects.create(
        call=call, name="lookup_work_order", arguments={"phone": "+15555550123"}, result_summary="RO 1", latency_ms=12
    )
    html = client.get(reverse("calls:detail", kwargs={"slug": owner.shop.slug, "pk": call.pk})).content.decode()
    for text in [
        "Is my car ready?",
        "Let me check.",
        "lookup_work_order",
        "12 ms",
        "640 ms",
        "Offline",
        "Callback requested",
    ]:
        assert text in html
    assert "+15555550123" not in html


def test_it_exports_the_filtered_list_as_safe_csv(client, owner):
    shop = owner.shop
    CallLogFactory(shop=shop, caller_number="+15555550123", summary='=HYPERLINK("http://x")', outcome="resolved")
    CallLogFactory(shop=shop, summary="@SUM(1)", outcome="resolved")
    CallLogFactory(shop=shop, summary="other", outcome="transferred")
    response = client.get(reverse("calls:export", kwargs={"slug": shop.slug}) + "?outcome=resolved")
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][0] == "started_at"
    assert len(rows) == 3
    summaries = {r[-1] for r in rows[1:]}
    assert summaries == {'\'=HYPERLINK("http://x")', "'@SUM(1)"}
    assert all(r[2].startswith("•••") for r in rows[1:])


def test_it_aggregates_analytics_in_the_shops_timezone(client, owner):
    shop = owner.shop  # America/Chicago
    BusinessHoursFactory(shop=shop, weekday=0, opens_at=dt.time(8), closes_at=dt.time(17))
    tz = shop.tz
    monday_noon = dt.datetime(2026, 11, 2, 12, 0, tzinfo=tz)
    monday_late = dt.datetime(2026, 11, 2, 22, 30, tzinfo=tz)  # 04:30 UTC on Tuesday
    CallLogFactory(
        shop=shop,
        started_at=monday_noon,
        outcome="resolved",
        intent="GET_HOURS",
        duration_seconds=60,
        first_response_ms=500,
    )
    CallLogFactory(
        shop=shop,
        started_at=monday_late,
        outcome="transferred",
        intent="GET_HOURS",
        duration_seconds=120,
        first_response_ms=900,
    )
    CallLogFactory(shop=shop, started_at=monday_late, outcome="caller_hung_up", intent="CHECK_STATUS")
    response = client.get(
        reverse("calls:analytics", kwargs={"slug": shop.slug}) + "?range=custom&start=2026-11-01&end=2026-11-03"
    )
    data = response.context["data"]
    assert data.total == 3
    assert dict(data.per_day)[dt.date(2026, 11, 2)] == 3  # all on Monday, local time
    assert dict(data.by_intent) == {"GET_HOURS": 2, "CHECK_STATUS": 1}
    assert data.after_hours == 2
    assert data.avg_duration == 90
    assert data.avg_first_response == 700
    assert round(data.outcome_share("resolved")) == 33
    html = response.content.decode()
    assert "<svg" in html and "Calls per day" in html


def test_it_loads_the_list_fragment_for_htmx_filters(client, owner):
    CallLogFactory(shop=owner.shop, summary="hello")
    response = client.get(list_url(owner.shop, q="hello"), headers={"HX-Request": "true", "HX-Target": "call-results"})
    html = response.content.decode()
    assert 'id="call-results"' in html and '<nav class="tabs"' not in html
    assert CallLog.objects.count() == 1
