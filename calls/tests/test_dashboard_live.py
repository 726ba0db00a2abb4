from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from calls.live import acall_changed
from calls.routing import websocket_urlpatterns
from calls.tests.factories import CallLogFactory
from shops.tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

app = URLRouter(websocket_urlpatterns)


def communicator_for(user, slug):
    communicator = WebsocketCommunicator(app, f"/ws/shops/{slug}/activity/")
    communicator.scope["user"] = user
    return communicator


async def test_it_pushes_the_activity_fragment_when_a_call_changes():
    membership = await database_sync_to_async(MembershipFactory)()
    communicator = communicator_for(membership.user, membership.shop.slug)
    connected, _ = await communicator.connect()
    assert connected
    try:
        call = await database_sync_to_async(CallLogFactory)(shop=membership.shop, caller_number="+15555550777")
        await acall_changed(shop_id=membership.shop.pk, call_id=call.pk)
        html = await communicator.receive_from(timeout=5)
        assert 'id="activity"' in html and 'hx-swap-oob="true"' in html
        assert "•••0777" in html and "+15555550777" not in html
    finally:
        await communicator.disconnect()


async def test_it_refuses_someone_elses_shop_and_anonymous_users():
    membership = await database_sync_to_async(MembershipFactory)()
    stranger = await database_sync_to_async(UserFactory)()
    from django.contrib.auth.models import AnonymousUser

    for user in (stranger, AnonymousUser()):
        communicator = communicator_for(user, membership.shop.slug)
        connected, _ = await communicator.connect()
        assert not connected
        await communicator.disconnect()


def test_it_reads_from_redis_longer_than_the_dashboard_waits_for_a_message():
    """An owner's dashboard with no call for 5 s must stay connected. channels_redis waits for each
    message in a 5 s BZPOPMIN and redis-py 8 reads every socket with a 5 s timeout by default: the read
    timed out first and closed the socket with 1011 (found by bench/soak.py's two-process run)."""
    from channels.layers import get_channel_layer
    from channels_redis.core import RedisChannelLayer
    from channels_redis.utils import create_pool

    layer = get_channel_layer()
    if not isinstance(layer, RedisChannelLayer):
        pytest.skip("no Redis channel layer (REDIS_URL unset): the in-memory layer has no socket")
    connection = create_pool(dict(layer.hosts[0])).make_connection()  # not connected: settings only
    assert connection.socket_timeout is None or connection.socket_timeout > layer.brpop_timeout
