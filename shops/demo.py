"""The demo shop every fresh install gets (`python manage.py seed_demo`, run by `make run`).

Idempotent: running it again updates the same rows instead of adding more.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from shops.models import BusinessHours, Membership, Service, Shop, WorkOrder

DEMO_SLUG = "demo-auto-repair"
DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "demo12345"  # noqa: S105 - a published demo login, never used outside DEBUG demos

DEMO_HOURS = [(day, dt.time(7, 30), dt.time(17, 30)) for day in range(5)] + [(5, dt.time(8, 0), dt.time(13, 0))]
DEMO_SERVICES = [
    ("Oil change", "from $49.95", "about 30 minutes"),
    ("Brake pads and rotors", "from $189 per axle", "2 to 3 hours"),
    ("Wheel alignment", "$99", "about an hour"),
    ("Tire rotation", "$29", "about 30 minutes"),
    ("Check engine light diagnosis", "$120", "1 to 2 hours"),
    ("Battery replacement", "from $159", "about 30 minutes"),
    ("A/C recharge", "from $149", "about an hour"),
    ("Transmission service", "from $199", "2 to 3 hours"),
    ("State inspection", "$35", "about 45 minutes"),
    ("Timing belt", "quote after inspection", "a full day"),
]
_FIRST = [
    "Maria",
    "James",
    "Linda",
    "Robert",
    "Patricia",
    "Michael",
    "Jennifer",
    "David",
    "Elizabeth",
    "Carlos",
    "Aisha",
    "Wei",
    "Priya",
    "Kevin",
    "Sandra",
    "Luis",
    "Emily",
    "Omar",
    "Grace",
    "Tyrone",
]
_LAST = [
    "Garcia",
    "Johnson",
    "Nguyen",
    "Patel",
    "Brown",
    "Miller",
    "Davis",
    "Rodriguez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Moore",
    "Martin",
    "Jackson",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Clark",
]
_VEHICLES = [
    ("Toyota", "Camry"),
    ("Toyota", "Tacoma"),
    ("Ford", "F-150"),
    ("Ford", "Escape"),
    ("Chevrolet", "Silverado"),
    ("Honda", "Accord"),
    ("Honda", "CR-V"),
    ("Nissan", "Altima"),
    ("Jeep", "Wrangler"),
    ("Subaru", "Outback"),
    ("Hyundai", "Elantra"),
    ("Kia", "Sorento"),
    ("BMW", "X3"),
    ("Ram", "1500"),
    ("Volkswagen", "Jetta"),
]
_WORK = [s[0] for s in DEMO_SERVICES] + ["Water pump", "Suspension struts", "Serpentine belt", "Spark plugs"]


@dataclass(frozen=True)
class DemoResult:
    shop: Shop
    api_token: str
    work_orders: int


@transaction.atomic
def seed_demo() -> DemoResult:
    """Create or refresh the demo shop, its owner, hours, services and ~50 work orders.

    Returns the shop, a freshly rotated API token (tokens are stored hashed, so the only way to
    print one is to issue a new one) and the number of demo work orders.
    """
    shop, _ = Shop.objects.update_or_create(
        slug=DEMO_SLUG,
        defaults={
            "name": "Demo Auto Repair",
            "phone_number": "+15555550100",
            "transfer_number": "+15555550199",
            "address": "1200 Main Street, Springfield, IL 62701",
            "directions_note": "On Main Street at 12th, next to the car wash; customer parking is out front.",
            "timezone": "America/Chicago",
            "greeting": "Thanks for calling Demo Auto Repair, this is the virtual receptionist. How can I help?",
        },
    )
    shop.hours.all().delete()
    BusinessHours.objects.bulk_create(
        BusinessHours(shop=shop, weekday=day, opens_at=opens, closes_at=closes) for day, opens, closes in DEMO_HOURS
    )
    for name, price, duration in DEMO_SERVICES:
        Service.objects.update_or_create(
            shop=shop, name=name, defaults={"price_note": price, "duration_note": duration}
        )

    user_model = get_user_model()
    owner, created = user_model.objects.get_or_create(username=DEMO_EMAIL, defaults={"email": DEMO_EMAIL})
    if created or not owner.check_password(DEMO_PASSWORD):
        owner.set_password(DEMO_PASSWORD)
    # The demo owner may also browse the admin (work orders, CSV import, call logs).
    owner.is_staff = owner.is_superuser = True
    owner.save()
    EmailAddress.objects.update_or_create(user=owner, email=DEMO_EMAIL, defaults={"verified": True, "primary": True})
    Membership.objects.update_or_create(user=owner, shop=shop, defaults={"role": Membership.Role.OWNER})

    orders = _demo_work_orders(shop)
    for order in orders:
        defaults = {f: getattr(order, f) for f in _WORK_ORDER_FIELDS}
        WorkOrder.objects.update_or_create(shop=shop, number=order.number, defaults=defaults)
    return DemoResult(shop=shop, api_token=shop.rotate_api_token(), work_orders=len(orders))


_WORK_ORDER_FIELDS = [
    "customer_name",
    "customer_last_name",
    "customer_phone",
    "vehicle_year",
    "vehicle_make",
    "vehicle_model",
    "status",
    "status_note",
    "services",
    "promised_at",
    "source",
]


def _demo_work_orders(shop: Shop) -> list[WorkOrder]:
    """John Smith's Civic (the README's example call) plus four or more orders in every status."""
    rng = random.Random(20261126)  # noqa: S311 - demo data, not security
    today = timezone.localdate(timezone=shop.tz)
    at = lambda days, hour: dt.datetime.combine(today + dt.timedelta(days=days), dt.time(hour), tzinfo=shop.tz)  # noqa: E731
    orders = [
        WorkOrder(
            shop=shop,
            number="1001",
            customer_name="John Smith",
            customer_last_name="smith",
            customer_phone="+15555550123",
            vehicle_year=2018,
            vehicle_make="Honda",
            vehicle_model="Civic",
            status=WorkOrder.Status.READY_FOR_PICKUP,
            status_note="Brakes done, test-driven, keys at the front desk.",
            services="Brake pads and rotors; Oil change",
            promised_at=at(0, 16),
            source=WorkOrder.Source.ADMIN,
        )
    ]
    statuses = list(WorkOrder.Status)
    for i in range(49):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        make, model = rng.choice(_VEHICLES)
        status = statuses[i % len(statuses)]
        orders.append(
            WorkOrder(
                shop=shop,
                number=str(1002 + i),
                customer_name=f"{first} {last}",
                customer_last_name=last.lower(),
                customer_phone=f"+1555555{rng.randint(2000, 9999)}",
                vehicle_year=rng.randint(2005, 2025),
                vehicle_make=make,
                vehicle_model=model,
                status=status,
                status_note="",
                services="; ".join(rng.sample(_WORK, rng.randint(1, 3))),
                promised_at=at(rng.randint(-3, 6), rng.randint(9, 17)),
                source=WorkOrder.Source.ADMIN,
            )
        )
    return orders
