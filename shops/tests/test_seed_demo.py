from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command

from shops.models import Membership, Service, Shop, WorkOrder

pytestmark = pytest.mark.django_db


def run_seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def test_it_creates_the_demo_shop_described_in_the_design():
    output = run_seed()
    shop = Shop.objects.get(slug="demo-auto-repair")
    assert shop.name == "Demo Auto Repair"
    assert shop.phone_number == "+15555550100"
    assert shop.transfer_number == "+15555550199"
    assert shop.hours.exists()
    assert Service.objects.filter(shop=shop).count() >= 5
    john = WorkOrder.objects.get(shop=shop, customer_phone="+15555550123")
    assert (john.customer_name, john.vehicle_year, john.vehicle_make, john.vehicle_model) == (
        "John Smith",
        2018,
        "Honda",
        "Civic",
    )
    assert john.status == WorkOrder.Status.READY_FOR_PICKUP
    assert 45 <= WorkOrder.objects.filter(shop=shop).count() <= 60
    assert set(WorkOrder.objects.filter(shop=shop).values_list("status", flat=True)) == set(WorkOrder.Status.values)
    assert "demo@example.com / demo12345" in output


def test_it_lets_the_demo_owner_log_in_as_owner():
    run_seed()
    user = authenticate(username="demo@example.com", password="demo12345")
    assert user is not None
    assert Membership.objects.get(user=user).role == Membership.Role.OWNER


def test_it_is_idempotent_and_prints_a_working_api_token():
    run_seed()
    counts = (Shop.objects.count(), WorkOrder.objects.count(), Service.objects.count(), Membership.objects.count())
    output = run_seed()
    assert (Shop.objects.count(), WorkOrder.objects.count(), Service.objects.count(), Membership.objects.count()) == (
        counts
    )
    token_lines = [line for line in output.splitlines() if line.startswith("API token: ")]
    assert len(token_lines) == 1
    token = token_lines[0].removeprefix("API token: ")
    assert Shop.for_api_token(token) == Shop.objects.get(slug="demo-auto-repair")
