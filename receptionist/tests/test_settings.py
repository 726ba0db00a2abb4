"""The settings switch: nothing set = embedded default; DATABASE_URL / REDIS_URL = real services.

Each case loads settings in a fresh interpreter, exactly as a process starting with that
environment would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import json, django
from django.conf import settings
django.setup()
print(json.dumps({
    "engine": settings.DATABASES["default"]["ENGINE"],
    "layer": settings.CHANNEL_LAYERS["default"]["BACKEND"],
    "eager": settings.CELERY_TASK_ALWAYS_EAGER,
    "broker": settings.CELERY_BROKER_URL,
    "debug": settings.DEBUG,
    "voice_engine": settings.VOICE_ENGINE,
}))
"""
CLEARED = ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "OPENAI_API_KEY", "VOICE_ENGINE")


def load_settings(**env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in CLEARED}
    base["DJANGO_SETTINGS_MODULE"] = "receptionist.settings"
    return subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", PROBE], cwd=ROOT, env={**base, **env}, capture_output=True, text=True, timeout=60
    )


def settings_for(**env: str) -> dict:
    result = load_settings(**env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_it_runs_embedded_with_nothing_but_debug_set():
    loaded = settings_for(DEBUG="1")
    assert loaded["engine"] == "django.db.backends.sqlite3"
    assert loaded["layer"] == "channels.layers.InMemoryChannelLayer"
    assert loaded["eager"] is True
    assert loaded["debug"] is True


def test_it_keeps_debug_off_unless_asked():
    loaded = settings_for(SECRET_KEY="k" * 50, ALLOWED_HOSTS="example.com")
    assert loaded["debug"] is False


def test_it_switches_to_postgresql_and_redis_from_the_environment():
    loaded = settings_for(
        DEBUG="1", DATABASE_URL="postgres://postgres@127.0.0.1:5432/test", REDIS_URL="redis://127.0.0.1:6379/0"
    )
    assert loaded["engine"] == "django.db.backends.postgresql"
    assert loaded["layer"] == "channels_redis.core.RedisChannelLayer"
    assert loaded["eager"] is False
    assert loaded["broker"] == "redis://127.0.0.1:6379/0"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ALLOWED_HOSTS": "example.com"}, "SECRET_KEY is not set"),
        ({"SECRET_KEY": "insecure-dev-key-only-for-debug", "ALLOWED_HOSTS": "example.com"}, "development default"),
        ({"SECRET_KEY": "k" * 50}, "ALLOWED_HOSTS is empty"),
        ({"DEBUG": "1", "VOICE_ENGINE": "openai"}, "needs OPENAI_API_KEY"),
        ({"DEBUG": "1", "VOICE_ENGINE": "loud"}, "VOICE_ENGINE must be"),
        ({"DEBUG": "1", "WEBHOOK_RATE_LIMIT": "lots"}, "WEBHOOK_RATE_LIMIT must look like"),
        ({"DEBUG": "1", "TRANSCRIPT_RETENTION_DAYS": "-1"}, "TRANSCRIPT_RETENTION_DAYS must be"),
    ],
)
def test_it_refuses_to_start_with_unsafe_or_wrong_settings(env, message):
    result = load_settings(**env)
    assert result.returncode != 0
    assert message in result.stderr


def test_it_picks_the_offline_engine_when_no_key_is_set():
    assert settings_for(DEBUG="1")["voice_engine"] == "auto"
