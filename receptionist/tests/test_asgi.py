from __future__ import annotations

import pytest
from channels.testing import HttpCommunicator, WebsocketCommunicator

from receptionist.asgi import application


@pytest.mark.django_db(transaction=True)
async def test_it_serves_http_through_the_asgi_app():
    communicator = HttpCommunicator(application, "GET", "/healthz", headers=[(b"host", b"testserver")])
    response = await communicator.get_response()
    assert response["status"] == 200


@pytest.mark.django_db(transaction=True)  # Channels' denier closes old DB connections like any consumer
async def test_it_rejects_websockets_from_foreign_origins():
    communicator = WebsocketCommunicator(application, "/ws/anything/", headers=[(b"origin", b"https://evil.test")])
    connected, _ = await communicator.connect()
    assert not connected
    await communicator.disconnect()
