from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from shops.demo import DEMO_EMAIL, DEMO_PASSWORD, seed_demo


class Command(BaseCommand):
    help = "Create or refresh the demo shop, its owner login and ~50 work orders (safe to run again)."

    def handle(self, *args: Any, **options: Any) -> None:
        result = seed_demo()
        self.stdout.write(f"Demo shop: {result.shop.name} ({result.shop.slug}), calls to {result.shop.phone_number}")
        self.stdout.write(f"Work orders: {result.work_orders}")
        self.stdout.write(f"Owner login: {DEMO_EMAIL} / {DEMO_PASSWORD}")
        self.stdout.write(f"Open: {settings.PUBLIC_BASE_URL}/")
        self.stdout.write(f"API token: {result.api_token}")
