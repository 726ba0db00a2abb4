from __future__ import annotations

import datetime as dt
import json

import pytest
from asgiref.sync import async_to_sync

from shops.models import Shop
from voice.tests.conftest import CHICAGO
from voice.tools import REGISTRY

pytestmark = pytest.mark.django_db

TOOL_NAMES = [
    "lookup_work_order",
    "get_work_order_status",
    "get_business_hours",
    "get_location",
    "list_services",
    "get_customer_vehicles",
    "transfer_to_human",
    "end_call",
]


def run(ctx, name, arguments=None):
    runner = REGISTRY.runner(ctx)
    result = async_to_sync(runner.run)(name, arguments)
    return result, runner.take()


def test_it_defines_each_tool_once_for_every_engine():
    assert sorted(REGISTRY.names) == sorted(TOOL_NAMES)
    chat = REGISTRY.chat_completions_tools()
    realtime = REGISTRY.realtime_tools()
    assert [t["function"]["name"] for t in chat] == [t["name"] for t in realtime] == REGISTRY.names
    for c, r in zip(chat, realtime, strict=True):
        assert c["type"] == r["type"] == "function"
        assert c["function"]["parameters"] == r["parameters"]
        assert c["function"]["description"] == r["description"]
        assert r["parameters"]["type"] == "object"
        # The shop and the caller come from the call, never from the model.
        assert not {"shop", "shop_id", "caller", "caller_number", "phone"} & set(r["parameters"]["properties"])


def test_it_records_each_tool_call_with_its_arguments_and_timing(context, shop):
    result, calls = run(context(), "get_location", {})
    assert result.ok
    assert [(c.name, c.ok) for c in calls] == [("get_location", True)]
    assert calls[0].latency_ms >= 0
    assert "12 Elm Street" in calls[0].summary


def test_it_rejects_unknown_tools_and_bad_arguments_without_raising(context):
    result, _ = run(context(), "delete_everything", {})
    assert not result.ok
    assert "unknown tool" in result.data["error"]
    result, _ = run(context(), "get_location", "{not json")
    assert not result.ok


def test_it_drops_arguments_the_schema_does_not_declare(context, orders):
    # A model trying to pass another shop (or anything unknown) is ignored.
    _, calls = run(context(), "lookup_work_order", {"ro_number": "1001", "shop": "other-shop", "verified": True})
    assert calls[0].arguments == {"ro_number": "1001"}


def test_it_returns_model_friendly_json(context, shop):
    result, _ = run(context(), "get_business_hours", {"question": "week"})
    payload = json.loads(result.for_model())
    assert payload["ok"] is True
    assert payload["speak"] == result.speak


def test_it_answers_hours_from_the_shops_schedule(context, shop):
    result, _ = run(context(), "get_business_hours", {"question": "closing"})
    assert result.speak == "We're open right now until 5:30 PM."
    result, _ = run(context(), "get_business_hours", {"day": "saturday"})
    assert result.speak == "On Saturday we're open 8 AM to 1 PM."
    result, _ = run(context(), "get_business_hours", {"day": "sunday"})
    assert "closed on Sunday" in result.speak
    result, _ = run(context(), "get_business_hours", {"day": "holiday"})
    assert "Thursday for Thanksgiving" in result.speak


def test_it_answers_whether_the_shop_is_open_at_a_time(context, shop):
    result, _ = run(context(), "get_business_hours", {"day": "friday", "time": "18:00"})
    assert result.speak.startswith("No, we're not open on Friday at 6 PM.")
    result, _ = run(context(), "get_business_hours", {"day": "friday", "time": "09:00"})
    assert result.speak.startswith("Yes")


def test_it_says_when_the_shop_opens_next_when_closed(shop):
    from voice.context import CallContext

    friday_night = dt.datetime(2026, 11, 27, 19, 0, tzinfo=CHICAGO)
    ctx = CallContext(shop=shop, clock=lambda: friday_night)
    result, _ = run(ctx, "get_business_hours", {"question": "open_now"})
    assert result.speak == "We're closed right now. We open again tomorrow at 8 AM."


def test_it_gives_the_address_and_directions(context):
    result, _ = run(context(), "get_location")
    assert result.speak == (
        "We're at 12 Elm Street, Springfield, IL 62701. Behind the Shell station; park in any spot marked Service."
    )


def test_it_offers_a_person_when_the_address_is_missing(context, shop):
    Shop.objects.filter(pk=shop.pk).update(address="")
    shop.refresh_from_db()
    result, _ = run(context(), "get_location")
    assert not result.ok
    assert result.data["offer_transfer"]


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("do you do alignments", "Yes, we do wheel alignments."),
        ("my brakes are squeaking", "Yes, we do brake pads and rotors."),
        ("can you recharge my AC", "Yes, we do A/C recharges."),
        ("do you do state inspections", "Yes, we do state inspections."),
        ("oil change", "Yes, we do oil changes."),
        ("how much is an alignment", "A wheel alignment is $99."),
        ("how long does an oil change take", "An oil change takes about 30 minutes."),
    ],
)
def test_it_matches_services_to_what_the_caller_asked(context, shop, query, says):
    result, _ = run(context(), "list_services", {"query": query})
    assert result.speak == says


def test_it_says_no_and_names_the_closest_services_for_something_not_offered(context, shop):
    result, _ = run(context(), "list_services", {"query": "do you do body work and paint"})
    assert result.speak.startswith("I don't see that on our service list.")
    assert result.data["offer_transfer"]


def test_it_lists_services_when_asked_in_general(context, shop):
    result, _ = run(context(), "list_services", {})
    assert result.speak == (
        "We do A/C recharges, brake pads and rotors, check engine light diagnosis, oil changes, state inspections, "
        "timing belts, and more. Is there something specific you need?"
    )


def test_it_transfers_and_warns_of_voicemail_after_hours(shop):
    from voice.context import CallContext

    sunday = dt.datetime(2026, 11, 29, 11, 0, tzinfo=CHICAGO)
    ctx = CallContext(shop=shop, clock=lambda: sunday)
    result, _ = run(ctx, "transfer_to_human", {"reason": "asked"})
    assert result.ok
    assert ctx.state.transferred
    assert "voicemail" in result.speak
    assert result.data["number"] == shop.transfer_number


def test_it_cannot_transfer_without_a_transfer_number(context, shop):
    Shop.objects.filter(pk=shop.pk).update(transfer_number="")
    shop.refresh_from_db()
    ctx = context()
    result, _ = run(ctx, "transfer_to_human")
    assert not result.ok
    assert not ctx.state.transferred


def test_it_ends_the_call_politely(context):
    ctx = context()
    result, _ = run(ctx, "end_call")
    assert result.speak == "Thanks for calling Elm Street Auto. Have a great day!"
    assert ctx.state.ended


def test_it_gives_a_verified_caller_the_status_with_pickup_hours(context, orders):
    ctx = context("+15555550123")
    result, _ = run(ctx, "get_work_order_status")
    assert result.ok
    assert result.speak == (
        "Your 2018 Honda Civic is ready for pickup. The note on it says: Brakes done, keys at the front desk. "
        "We're open until 5:30 PM today."
    )
    assert result.data["ro_spoken"] == "1 0 0 1"


def test_it_quotes_only_the_promised_time_the_work_order_states(context, orders):
    ctx = context("+15555550188")
    result, _ = run(ctx, "get_work_order_status", {"vehicle": "Camry"})
    assert "promised for today at 4 PM" in result.speak
    result, _ = run(ctx, "get_work_order_status", {"vehicle": "truck"})
    assert result.speak == "Your 2016 Ford F-150 is waiting on parts."  # no promised time on file: none given


def test_it_offers_an_update_from_the_team_when_the_promised_time_has_passed(shop, orders):
    from voice.context import CallContext

    evening = dt.datetime(2026, 11, 24, 17, 0, tzinfo=CHICAGO)
    ctx = CallContext(shop=shop, caller_number="+15555550188", clock=lambda: evening)
    result, _ = run(ctx, "get_work_order_status", {"vehicle": "Camry"})
    assert "It was promised for today at 4 PM" in result.speak
    assert result.data["offer_transfer"]


def test_it_asks_a_caller_with_two_vehicles_which_one(context, orders):
    ctx = context("+15555550188")
    result, _ = run(ctx, "get_work_order_status")
    assert result.data["choose"]
    # Newest work order first.
    assert result.speak == "I see more than one vehicle. Is it the 2020 Toyota Camry or the 2016 Ford F-150?"


def test_it_lists_a_verified_callers_own_vehicles(context, orders):
    result, _ = run(context("+15555550188"), "get_customer_vehicles")
    assert result.speak == "I see the 2020 Toyota Camry and the 2016 Ford F-150."
    result, _ = run(context(), "get_customer_vehicles")
    assert not result.ok
    assert "Ford" not in result.speak
