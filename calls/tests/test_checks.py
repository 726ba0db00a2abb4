from __future__ import annotations

import pytest

from calls.checks import channel_layer_reaches_every_process

IN_MEMORY = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
REDIS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {}}}


@pytest.mark.parametrize(
    ("workers", "layers", "warned"),
    [
        ("2", IN_MEMORY, True),
        ("1", IN_MEMORY, False),
        (None, IN_MEMORY, False),
        ("4", REDIS, False),
        ("many", IN_MEMORY, False),
    ],
)
def test_it_warns_when_server_processes_cannot_share_live_updates(monkeypatch, settings, workers, layers, warned):
    if workers is None:
        monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    else:
        monkeypatch.setenv("WEB_CONCURRENCY", workers)
    settings.CHANNEL_LAYERS = layers
    assert [m.id for m in channel_layer_reaches_every_process()] == (["calls.W001"] if warned else [])
