"""Caller verification: who may hear about which work order (design.md, The conversation brain)."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync

from shops.models import WorkOrder
from shops.tests.factories import ShopFactory, WorkOrderFactory
from voice import verification
from voice.nlu.vocab import Vehicle
from voice.replies import STATUS_WORDS
from voice.tools import REGISTRY
from voice.verification import Facts

pytestmark = pytest.mark.django_db


def run(ctx, name, arguments=None):
    return async_to_sync(REGISTRY.runner(ctx).run)(name, arguments)


def verify(ctx, **facts):
    return async_to_sync(verification.verify)(ctx, Facts(**facts))


def says_nothing_about_orders(text: str, *orders: WorkOrder) -> bool:
    lowered = text.lower()
    if any(word in lowered for word in STATUS_WORDS):
        return False
    for order in orders:
        for secret in (order.vehicle_make, order.vehicle_model, order.customer_name.split()[-1], order.number):
            if secret and secret.lower() in lowered:
                return False
    return True


def test_it_verifies_a_caller_whose_number_matches_the_work_order(context, orders):
    ctx = context("+15555550123")
    result = run(ctx, "lookup_work_order")
    assert result.ok
    assert {o["ro_number"] for o in result.data["orders"]} == {"1001", "0950"}
    assert ctx.state.verified_by[str(orders["civic"].pk)] == verification.CALLER_ID


def test_it_verifies_by_ro_number_including_spoken_forms(context, orders):
    for said in ["1001", "RO 1001", "#1001", " 1001 "]:
        ctx = context()
        assert run(ctx, "lookup_work_order", {"ro_number": said}).ok, said


def test_it_verifies_by_last_name_and_make_or_model(context, orders):
    assert run(context(), "lookup_work_order", {"last_name": "Garcia", "vehicle": "Ford"}).ok
    assert run(context(), "lookup_work_order", {"last_name": "garcia", "vehicle": "F150"}).ok
    assert run(context(), "lookup_work_order", {"last_name": "Maria Garcia", "vehicle": "the f one fifty"}).ok
    assert run(context(), "lookup_work_order", {"last_name": "Nguyen", "vehicle": "Tacoma"}).ok


def test_it_does_not_verify_by_name_alone_or_vehicle_alone_and_asks_for_the_rest(context, orders):
    ctx = context()
    name_only = run(ctx, "lookup_work_order", {"last_name": "Smith"})
    assert not name_only.ok
    assert name_only.speak == "Thanks. And what's the make or model of the vehicle?"
    vehicle_only = run(ctx, "lookup_work_order", {"vehicle": "Honda Civic"})
    assert not vehicle_only.ok
    assert vehicle_only.speak == "Got it. And what's the last name on the work order?"
    assert ctx.state.failed_verifications == 0  # partial facts are not a failed try
    assert not ctx.state.verified_ids


def test_it_tells_an_unverified_caller_nothing_about_any_work_order(context, orders):
    ctx = context("+15555550999")  # a number on no work order
    for name, args in [
        ("lookup_work_order", {}),
        ("lookup_work_order", {"last_name": "Smith"}),
        ("lookup_work_order", {"last_name": "Smith", "vehicle": "Toyota"}),
        ("get_work_order_status", {}),
        ("get_work_order_status", {"vehicle": "Honda Civic"}),
        ("get_customer_vehicles", {}),
    ]:
        result = run(ctx, name, args)
        assert not result.ok, (name, args)
        assert says_nothing_about_orders(result.speak, *orders.values()), (name, args, result.speak)
        assert "orders" not in result.data or not result.data["orders"]


def test_it_does_not_say_whether_a_name_exists(context, orders):
    known = run(context(), "lookup_work_order", {"last_name": "Smith"})
    unknown = run(context(), "lookup_work_order", {"last_name": "Zebrowski"})
    assert known.speak == unknown.speak
    assert known.data == unknown.data


def test_it_requires_the_model_to_match_when_one_is_given(context, orders):
    # John Smith's car is a Honda Civic; "Honda Accord" is someone else's (Jane Smith's) car.
    ctx = context()
    result = run(ctx, "lookup_work_order", {"last_name": "John Smith", "vehicle": "Honda Pilot"})
    assert not result.ok
    assert ctx.state.failed_verifications == 1


def test_it_offers_a_transfer_after_two_failed_tries_and_stops_after_four(context, orders):
    ctx = context()
    first = run(ctx, "lookup_work_order", {"ro_number": "9999"})
    assert not first.data["offer_transfer"]
    second = run(ctx, "lookup_work_order", {"last_name": "Smith", "vehicle": "Kia"})
    assert second.data["offer_transfer"]
    assert "connect you" in second.speak
    run(ctx, "lookup_work_order", {"ro_number": "9998"})
    run(ctx, "lookup_work_order", {"ro_number": "9997"})
    # Even the right RO number no longer works on this call: guessing is not rewarded.
    locked = run(ctx, "lookup_work_order", {"ro_number": "1001"})
    assert not locked.ok
    assert ctx.state.failed_verifications == verification.MAX_FAILED
    assert not ctx.state.verified_ids


def test_it_uses_the_first_name_to_tell_two_customers_apart(context, orders):
    ctx = context()
    result = run(ctx, "lookup_work_order", {"last_name": "Jane Smith", "vehicle": "Honda"})
    assert result.ok
    assert ctx.state.verified_ids == [orders["accord"].pk]


def test_it_asks_which_vehicle_without_naming_another_customers(context, orders):
    # "Smith" + "Honda" fits John's Civic and Jane's Accord: the caller must say which, and hears neither.
    ctx = context()
    assert run(ctx, "lookup_work_order", {"last_name": "Smith", "vehicle": "Honda"}).ok
    status = run(ctx, "get_work_order_status")
    assert status.data["choose"]
    assert status.speak == "To make sure I have the right one, what's the model of the vehicle, or the RO number?"
    assert "Civic" not in status.speak and "Accord" not in status.speak


def test_it_never_reaches_another_shops_work_orders(context, orders):
    other = ShopFactory()
    WorkOrderFactory(shop=other, number="7777", customer_name="Zed Other", customer_phone="+15555550123")
    ctx = context("+15555550123")
    assert not run(ctx, "lookup_work_order", {"ro_number": "7777"}).ok
    result = run(ctx, "lookup_work_order")
    assert "7777" not in {o["ro_number"] for o in result.data["orders"]}


def test_it_keeps_status_behind_verification_even_when_the_model_passes_an_ro_it_was_not_given(context, orders):
    # get_work_order_status with an RO number is itself a verification by RO (the caller must have said it);
    # a wrong one is a failed try, and nothing is revealed.
    ctx = context()
    result = run(ctx, "get_work_order_status", {"ro_number": "4242"})
    assert not result.ok
    assert ctx.state.failed_verifications == 1


def test_it_tells_a_verified_caller_their_car_was_picked_up(context, orders):
    ctx = context()
    run(ctx, "lookup_work_order", {"ro_number": "0950"})
    result = run(ctx, "get_work_order_status", {"ro_number": "0950"})
    assert result.speak == "Our records show your 2018 Honda Civic has already been picked up."


def test_it_prefers_the_open_work_order_over_history(context, orders):
    ctx = context("+15555550123")  # John Smith: Civic ready (1001) and an older Civic visit picked up (0950)
    result = run(ctx, "get_work_order_status")
    assert result.data["ro_number"] == "1001"


def test_it_tells_a_verified_caller_about_a_cancelled_order_and_offers_the_team(context, orders):
    ctx = context()
    run(ctx, "lookup_work_order", {"last_name": "O'Neil", "vehicle": "Subaru"})
    result = run(ctx, "get_work_order_status")
    assert "was cancelled" in result.speak
    assert result.data["offer_transfer"]


def test_it_matches_a_longer_recorded_model(context, shop):
    WorkOrderFactory(shop=shop, number="5", customer_name="Lee Park", vehicle_make="Ford", vehicle_model="F-150 XLT")
    assert run(context(), "lookup_work_order", {"last_name": "Park", "vehicle": "F-150"}).ok


@pytest.mark.parametrize(
    ("said", "recorded", "fits"),
    [
        (Vehicle("Chevrolet", ""), ("Chevy", "Silverado"), True),
        (Vehicle("", "CR-V"), ("Honda", "CRV"), True),
        (Vehicle("Honda", "Civic"), ("Honda", "Accord"), False),
        (Vehicle("Toyota", "Civic"), ("Honda", "Civic"), False),
        (Vehicle("Mercedes-Benz", ""), ("Mercedes", "C300"), True),
    ],
)
def test_it_compares_vehicles_as_people_say_them(said, recorded, fits):
    order = WorkOrder(vehicle_make=recorded[0], vehicle_model=recorded[1])
    assert verification.vehicle_fits(order, said) is fits


def test_it_uses_the_indexes_one_query_per_lookup(context, orders, django_assert_max_num_queries):
    ctx = context("+15555550123")
    with django_assert_max_num_queries(4):  # caller id, vocabulary version, name lookup, verified orders
        verify(ctx, last_name="garcia", vehicle=Vehicle("Ford", "F-150"))


def test_it_counts_a_leak_only_for_words_of_orders_the_caller_is_not_verified_for(shop, orders):
    from voice.evaluation import Secrets, find_leaks

    secrets = Secrets.of(shop)
    civic, f150 = orders["civic"].pk, orders["f150"].pk
    assert find_leaks("Your 2016 Ford F-150 is waiting on parts.", secrets, {f150}, "any update") == []
    assert find_leaks("Is it the Camry?", secrets, {f150}, "hi")  # another order of hers, not verified
    assert find_leaks("It is ready.", secrets, set(), "hi") == ["says 'ready' to an unverified caller"]
    assert find_leaks("Thanks. And the make?", secrets, set(), "smith") == []
    assert find_leaks("RO 1 0 0 1 is done", secrets, {f150}, "hi")  # read digit by digit
    assert find_leaks("The Civic?", secrets, {civic}, "hi") == []
    assert find_leaks("We do check engine light diagnosis.", secrets, set(), "hi") == []  # public service name


def test_it_counts_an_everyday_word_as_a_leak_only_when_written_as_a_name(shop):
    from voice.evaluation import Secrets, find_leaks

    WorkOrderFactory(shop=shop, number="77", customer_name="Sam Day", vehicle_make="Lexus", vehicle_model="IS")
    secrets = Secrets.of(shop)
    assert find_leaks("Thanks for calling. Have a great day!", secrets, set(), "bye") == []
    assert find_leaks("Is it the Lexus?", secrets, set(), "hi")
    assert find_leaks("I see the car of Mr Day.", secrets, set(), "hi")


def test_it_does_not_take_one_ro_number_for_another_that_contains_it(context, shop, orders):
    WorkOrderFactory(shop=shop, number="100", customer_name="Ida Short", customer_phone="+15555550123")
    ctx = context("+15555550123")  # verified for RO 100 (and John Smith's orders) by caller ID
    result = run(ctx, "get_work_order_status", {"ro_number": "10234"})  # Wei Nguyen's Tacoma, said aloud
    assert result.data["ro_number"] == "10234"
