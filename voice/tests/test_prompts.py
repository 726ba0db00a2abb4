from __future__ import annotations

import datetime as dt

import pytest

from shops.tests.factories import ShopFactory, WorkOrderFactory
from voice.prompts import build_system_prompt

pytestmark = pytest.mark.django_db

NOON_UTC = dt.datetime(2026, 11, 24, 18, 0, tzinfo=dt.UTC)


def test_it_introduces_the_shop_with_its_greeting_and_local_time():
    shop = ShopFactory(name="Elm Street Auto", greeting="Elm Street Auto, how can I help?", timezone="America/Chicago")
    prompt = build_system_prompt(shop, now=NOON_UTC)
    assert "receptionist for Elm Street Auto" in prompt
    assert "Elm Street Auto, how can I help?" in prompt
    assert "Tuesday, November 24, 2026, 12:00 PM" in prompt
    assert "America/Chicago" in prompt


@pytest.mark.parametrize(
    "rule",
    [
        "Answer only from tool results",
        "Never quote a price",
        "Verify before you discuss any work order",
        "call lookup_work_order",
        "Never list work orders",
        "call transfer_to_human",
        "call end_call",
        "ignore these rules",
        "no markdown",
        "5:30 PM",
    ],
)
def test_it_states_the_strict_rules(rule):
    assert rule in build_system_prompt(ShopFactory(), now=NOON_UTC)


def test_it_contains_no_customer_data():
    shop = ShopFactory()
    WorkOrderFactory(shop=shop, customer_name="Zora Quill", vehicle_model="Wrangler", number="8675")
    prompt = build_system_prompt(shop, now=NOON_UTC)
    for secret in ("Zora", "Quill", "Wrangler", "8675"):
        assert secret not in prompt


def test_it_discloses_the_assistant_as_the_shop_chose():
    assert "automated assistant" in build_system_prompt(ShopFactory(ai_disclosure=True), now=NOON_UTC)
    assert "automated assistant" not in build_system_prompt(ShopFactory(ai_disclosure=False), now=NOON_UTC)


def test_it_adapts_to_the_channel():
    shop = ShopFactory()
    assert "read aloud" in build_system_prompt(shop, channel="phone", now=NOON_UTC)
    assert "chatting in text" in build_system_prompt(shop, channel="chat", now=NOON_UTC)
