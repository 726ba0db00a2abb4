from __future__ import annotations

import pytest
from django.db import IntegrityError

from calls.tests.factories import CallLogFactory
from shops.models import Shop, WorkOrder
from shops.tests.factories import ShopFactory, WorkOrderFactory

pytestmark = pytest.mark.django_db


def test_it_allows_one_work_order_number_per_shop():
    order = WorkOrderFactory(number="1001")
    WorkOrderFactory(number="1001")  # another shop may reuse the number
    with pytest.raises(IntegrityError):
        WorkOrderFactory(number="1001", shop=order.shop)


def test_it_allows_one_call_log_per_call_sid():
    call = CallLogFactory()
    with pytest.raises(IntegrityError):
        CallLogFactory(call_sid=call.call_sid)


def test_it_normalises_admin_typed_phone_to_e164_and_derives_last_name():
    order = WorkOrderFactory.build(shop=ShopFactory(), customer_phone="(555) 555-0123", customer_name="Smith, John")
    order.clean()
    assert order.customer_phone == "+15555550123"
    assert order.customer_last_name == "smith"


@pytest.mark.parametrize(
    ("name", "last"),
    [("John Smith", "smith"), ("Mary Ann O'Neil Jr.", "o'neil"), ("  ", ""), ("Cher", "cher"), ("Lee, Ana", "lee")],
)
def test_it_finds_the_last_name_people_would_give(name, last):
    assert WorkOrder.last_name_of(name) == last


def test_it_stores_only_a_hash_of_the_api_token_and_finds_the_shop_by_it():
    shop = ShopFactory()
    token = shop.rotate_api_token()
    shop.refresh_from_db()
    assert token not in shop.api_token_hash
    assert Shop.for_api_token(token) == shop
    assert Shop.for_api_token("vr_wrong") is None
    assert Shop.for_api_token("") is None


def test_it_invalidates_the_old_token_on_rotation():
    shop = ShopFactory()
    old = shop.rotate_api_token()
    new = shop.rotate_api_token()
    assert Shop.for_api_token(old) is None
    assert Shop.for_api_token(new) == shop


def test_it_reports_local_time_in_the_shops_timezone():
    import datetime as dt

    shop = ShopFactory(timezone="America/Los_Angeles")
    noon_utc = dt.datetime(2026, 11, 26, 20, 0, tzinfo=dt.UTC)
    assert shop.local_now(noon_utc).hour == 12
