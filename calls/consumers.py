"""Live call activity on the owner's overview page.

The browser (htmx ws extension) connects to /ws/shops/<slug>/activity/. The consumer checks that the
logged-in user is a member of that shop, joins the Channels group `shop-<id>` (calls.live sends
"call.changed" there from whichever process handles the call: Redis carries it across processes), and
answers each change with the overview's own `activity` partial, rendered on the server; the fragment
carries hx-swap-oob so htmx swaps it in place. No HTML is built in JavaScript.
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.template.loader import render_to_string

from calls.live import shop_group
from calls.selectors import activity_for_shop
from shops.models import Membership, Shop

ACTIVITY_PARTIAL = "shops/overview.html#activity"


@database_sync_to_async
def _shop_for_member(user: Any, slug: str) -> Shop | None:
    if user is None or not user.is_authenticated:
        return None
    membership = Membership.objects.filter(user=user, shop__slug=slug).select_related("shop").first()
    return membership.shop if membership else None


@database_sync_to_async
def _render_activity(shop: Shop) -> str:
    return render_to_string(ACTIVITY_PARTIAL, {"shop": shop, "activity": activity_for_shop(shop), "oob": True})


class DashboardConsumer(AsyncWebsocketConsumer):
    shop: Shop | None = None
    group: str | None = None

    async def connect(self) -> None:
        slug = self.scope["url_route"]["kwargs"]["slug"]
        self.shop = await _shop_for_member(self.scope.get("user"), slug)
        if self.shop is None:
            await self.close(code=4403)
            return
        self.group = shop_group(self.shop.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """The page sends nothing we act on (htmx may send form values); ignore it."""

    async def call_changed(self, event: dict[str, Any]) -> None:
        assert self.shop is not None  # noqa: S101 - only group members receive events
        await self.send(text_data=await _render_activity(self.shop))
