"""Redis down or hung: phone calls are still answered, and the live dashboard updates again when it is back.

Redis carries three things here, none of which a call may wait on: the webhook rate limit (the cache),
the live dashboard update (the channel layer's group_send) and the call's summary (the Celery broker).
Each test runs a private redis-server on a free port (tests.faults.RedisServer; the shared one is never
touched) and points the three at it with the exact configuration production derives from REDIS_URL
(read from the settings module in a fresh interpreter). Stopped, Redis refuses connections (fails in
milliseconds); hung (SIGSTOP), it accepts them and never answers, which only timeouts end.
"""

from __future__ import annotations

import logging
import time

import pytest
from channels.db import database_sync_to_async
from channels.layers import channel_layers
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.utils import timezone
from redis.exceptions import ConnectionError as RedisConnectionError

from calls.live import acall_changed
from calls.models import CallLog
from calls.routing import websocket_urlpatterns
from calls.tests.factories import CallLogFactory
from shops.tests.factories import MembershipFactory, ShopFactory
from telephony.tests.fakes import call_params, twiml
from tests.faults import RedisServer, celery_broker, production_redis_settings

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not RedisServer.available(), reason="redis-server is not installed"),
]

SHOP_NUMBER = "+15557000000"
# A dead Redis fails at once; a hung one costs each of its users its timeout: the rate limit's cache 1 s,
# the live update 1 s, the summary's publish 3 s (the status callback pays all three: 5 s by design).
# Twilio waits 15 s for a webhook.
DOWN_SECONDS = 2.0  # errors come in milliseconds; the rest is a loaded test machine
HUNG_SECONDS = 8.0


@pytest.fixture(scope="module")
def redis_server():
    server = RedisServer()
    server.start()
    yield server, production_redis_settings(server.url)
    server.close()


@pytest.fixture
def redis(settings, redis_server):
    """A private Redis behind the cache, the channel layer and the Celery broker, as REDIS_URL sets them."""
    server, production = redis_server
    server.start()  # running and answering, whatever the test before did to it
    settings.CACHES = production["CACHES"]
    settings.CHANNEL_LAYERS = production["CHANNEL_LAYERS"]
    channel_layers.backends.clear()
    try:
        with celery_broker(production):
            yield server
    finally:
        server.close()  # killed (and thawed first if hung): its next test starts it afresh
        channel_layers.backends.clear()


@pytest.fixture
def shop():
    return ShopFactory(phone_number=SHOP_NUMBER, transfer_number="+15557009999")


def answer_a_call(twilio, call_sid: str) -> tuple[float, float]:
    """The incoming-call webhook, then the status callback that closes the call; their durations (s)."""
    started = time.perf_counter()
    response = twilio.post("/telephony/twilio/voice/", call_params(CallSid=call_sid, To=SHOP_NUMBER))
    answered = time.perf_counter() - started
    assert response.status_code == 200
    assert twiml(response).find("Connect/Stream") is not None  # put through to the receptionist
    started = time.perf_counter()
    response = twilio.post(
        "/telephony/twilio/status/", call_params(CallSid=call_sid, CallStatus="completed", CallDuration="30")
    )
    closed = time.perf_counter() - started
    assert response.status_code == 204
    return answered, closed


def test_it_answers_calls_while_redis_is_down(twilio, shop, redis, caplog):
    answer_a_call(twilio, "CA" + "0" * 32)  # with Redis up: the first request of a process loads what it needs
    redis.stop()
    with caplog.at_level(logging.WARNING):
        answered, closed = answer_a_call(twilio, "CA" + "d" * 32)

    assert answered < DOWN_SECONDS and closed < DOWN_SECONDS, (answered, closed)
    call = CallLog.objects.get(call_sid="CA" + "d" * 32)
    assert call.status == CallLog.Status.COMPLETED and call.ended_at is not None
    assert call.summary == ""  # not written yet: the broker is down (summarize_missed_calls catches up)
    logged = caplog.text
    assert "live update for call" in logged and "not sent" in logged
    assert f"summary of call {call.pk} not queued" in logged


def test_it_answers_calls_while_redis_hangs(twilio, shop, redis, caplog):
    answer_a_call(twilio, "CA" + "0" * 32)
    redis.hang()
    with caplog.at_level(logging.WARNING):
        answered, closed = answer_a_call(twilio, "CA" + "e" * 32)

    assert answered < HUNG_SECONDS and closed < HUNG_SECONDS, (answered, closed)
    call = CallLog.objects.get(call_sid="CA" + "e" * 32)
    assert call.status == CallLog.Status.COMPLETED
    assert f"summary of call {call.pk} not queued" in caplog.text


async def test_live_updates_resume_when_redis_is_back(redis, caplog):
    membership = await database_sync_to_async(MembershipFactory)()
    shop = membership.shop
    call = await database_sync_to_async(CallLogFactory)(shop=shop, started_at=timezone.now())
    dashboard = URLRouter(websocket_urlpatterns)

    async def open_dashboard() -> WebsocketCommunicator:
        communicator = WebsocketCommunicator(dashboard, f"/ws/shops/{shop.slug}/activity/")
        communicator.scope["user"] = membership.user
        connected, _ = await communicator.connect()
        assert connected
        return communicator

    # Hung: the update is given up on within a second, and delivered once Redis answers again.
    page = await open_dashboard()
    try:
        redis.hang()
        started = time.perf_counter()
        with caplog.at_level(logging.WARNING):
            await acall_changed(shop_id=shop.pk, call_id=call.pk)
        assert time.perf_counter() - started < 2.0
        assert "live update for call" in caplog.text
        redis.unhang()
        await acall_changed(shop_id=shop.pk, call_id=call.pk)
        assert 'id="activity"' in await page.receive_from(timeout=10)
    finally:
        await page.disconnect()

    # Restarted (its data gone, the dashboard's group with it): the page reconnects, as htmx's
    # WebSocket extension does until it gets through, and gets updates again. The first attempt may
    # fail on a connection the layer kept from before the restart (redis-py drops it then).
    redis.stop()
    await acall_changed(shop_id=shop.pk, call_id=call.pk)  # logged, not raised
    redis.start()
    page = None
    for _attempt in range(3):
        try:
            page = await open_dashboard()
            break
        except RedisConnectionError:
            continue
    assert page is not None, "the dashboard could not reconnect to a Redis that is back"
    try:
        await acall_changed(shop_id=shop.pk, call_id=call.pk)
        assert 'id="activity"' in await page.receive_from(timeout=10)
    finally:
        await page.disconnect()
