"""Fixtures for the conversation brain: a shop like the demo one, with a known clock."""

from __future__ import annotations

import asyncio
import datetime as dt
import zoneinfo

import pytest
from asgiref.sync import async_to_sync
from django.core.cache import cache

from shops.models import BusinessHours, ClosedDate, Service, WorkOrder
from shops.tests.factories import ShopFactory, WorkOrderFactory
from voice import tools
from voice.context import CallContext, ConversationState
from voice.conversation import ConversationService
from voice.nlu import vocab

CHICAGO = zoneinfo.ZoneInfo("America/Chicago")
# Tuesday 24 November 2026, 10:00 in Chicago: the shop is open (7:30–17:30).
TUESDAY_10AM = dt.datetime(2026, 11, 24, 10, 0, tzinfo=CHICAGO)

HOURS = [(d, dt.time(7, 30), dt.time(17, 30)) for d in range(5)] + [(5, dt.time(8), dt.time(13))]
SERVICES = [
    ("Oil change", "from $49.95", "about 30 minutes"),
    ("Brake pads and rotors", "from $189 per axle", "2 to 3 hours"),
    ("Wheel alignment", "$99", "about an hour"),
    ("Tire rotation", "$29", "about 30 minutes"),
    ("Check engine light diagnosis", "$120", "1 to 2 hours"),
    ("A/C recharge", "from $149", "about an hour"),
    ("State inspection", "$35", "about 45 minutes"),
    ("Timing belt", "quote after inspection", "a full day"),
]


@pytest.fixture(autouse=True)
def _fresh_caches():
    vocab.forget()
    cache.clear()
    yield
    vocab.forget()


@pytest.fixture
def shop(db):
    shop = ShopFactory(
        name="Elm Street Auto",
        slug="elm-street-auto",
        address="12 Elm Street, Springfield, IL 62701",
        directions_note="Behind the Shell station; park in any spot marked Service.",
        timezone="America/Chicago",
        transfer_number="+15557009999",
    )
    BusinessHours.objects.bulk_create(BusinessHours(shop=shop, weekday=d, opens_at=o, closes_at=c) for d, o, c in HOURS)
    Service.objects.bulk_create(Service(shop=shop, name=n, price_note=p, duration_note=t) for n, p, t in SERVICES)
    ClosedDate.objects.create(shop=shop, date=dt.date(2026, 11, 26), reason="Thanksgiving")
    return shop


@pytest.fixture
def orders(shop):
    """John Smith's Civic is ready; Maria Garcia has a truck and a car in; others in other states."""
    make = WorkOrderFactory
    return {
        "civic": make(shop=shop, number="1001", customer_name="John Smith", customer_phone="+15555550123",
                      vehicle_year=2018, vehicle_make="Honda", vehicle_model="Civic",
                      status=WorkOrder.Status.READY_FOR_PICKUP, status_note="Brakes done, keys at the front desk."),
        "f150": make(shop=shop, number="1023", customer_name="Maria Garcia", customer_phone="+15555550188",
                     vehicle_year=2016, vehicle_make="Ford", vehicle_model="F-150",
                     status=WorkOrder.Status.WAITING_ON_PARTS),
        "camry": make(shop=shop, number="1024", customer_name="Maria Garcia", customer_phone="+15555550188",
                      vehicle_year=2020, vehicle_make="Toyota", vehicle_model="Camry",
                      status=WorkOrder.Status.IN_PROGRESS,
                      promised_at=dt.datetime(2026, 11, 24, 16, 0, tzinfo=CHICAGO)),
        "accord": make(shop=shop, number="1030", customer_name="Jane Smith", customer_phone="+15555550177",
                       vehicle_year=2015, vehicle_make="Honda", vehicle_model="Accord",
                       status=WorkOrder.Status.DIAGNOSING),
        "old_civic": make(shop=shop, number="0950", customer_name="John Smith", customer_phone="+15555550123",
                          vehicle_year=2018, vehicle_make="Honda", vehicle_model="Civic",
                          status=WorkOrder.Status.PICKED_UP),
        "tacoma": make(shop=shop, number="10234", customer_name="Wei Nguyen", customer_phone="+15555550166",
                       vehicle_year=2019, vehicle_make="Toyota", vehicle_model="Tacoma",
                       status=WorkOrder.Status.AWAITING_APPROVAL),
        "outback": make(shop=shop, number="1040", customer_name="Ann O'Neil", customer_phone="+15555550155",
                        vehicle_year=2012, vehicle_make="Subaru", vehicle_model="Outback",
                        status=WorkOrder.Status.CANCELLED),
    }  # fmt: skip


@pytest.fixture
def clock():
    return lambda: TUESDAY_10AM


@pytest.fixture
def context(shop, clock):
    def make(caller_number: str = "", **state) -> CallContext:
        return CallContext(shop=shop, state=ConversationState(**state), caller_number=caller_number, clock=clock)

    return make


@pytest.fixture
def converse(shop, clock):
    """converse("+1555...") → a sync `say(text) -> TurnResult` over a fresh chat conversation."""

    def make(caller_number: str = "", *, record: bool = True):
        service = async_to_sync(ConversationService.start)(
            shop=shop, channel="chat", caller_number=caller_number, engine="local", clock=clock, record=record
        )

        def say(text: str):
            return async_to_sync(service.handle_turn)(text)

        say.service = service
        return say

    return make


@pytest.fixture
def slow_location(monkeypatch):
    """get_location, held until the test sets the returned event."""
    release = asyncio.Event()
    original = tools.REGISTRY.get("get_location")

    async def slow(ctx, args):
        await release.wait()
        return await original.handler(ctx, args)

    monkeypatch.setitem(
        tools.REGISTRY._tools,
        "get_location",
        tools.Tool(original.name, original.description, original.parameters, slow),
    )
    return release
