"""Live call activity: tell the owner's open dashboards that a call started, changed or ended.

Messages go to the Channels group `shop-<id>` (design.md); the dashboard consumer renders the same
server-side fragment the page uses. Live updates are a convenience: if the channel layer (Redis) is
down the call must go on, so failures are logged and swallowed, and a Redis that hangs (no answer,
no error) is given up on after SEND_TIMEOUT seconds: a call's record writes wait on this send.
"""

from __future__ import annotations

import asyncio
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)

CALL_CHANGED = "call.changed"
SEND_TIMEOUT = 1.0


def shop_group(shop_id: int) -> str:
    return f"shop-{shop_id}"


async def acall_changed(*, shop_id: int, call_id: int) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async with asyncio.timeout(SEND_TIMEOUT):
            await layer.group_send(shop_group(shop_id), {"type": CALL_CHANGED, "call_id": call_id})
    except Exception:  # Redis down, hung or full: the dashboard catches up on its next load
        logger.warning("live update for call %s not sent", call_id, exc_info=True)


def call_changed(*, shop_id: int, call_id: int) -> None:
    """Sync wrapper for services running in Django's sync world (views, Celery, on_commit)."""
    async_to_sync(acall_changed)(shop_id=shop_id, call_id=call_id)
