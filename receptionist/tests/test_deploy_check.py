"""`manage.py check --deploy` is clean with production settings, in a fresh interpreter as a deploy runs it."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Whatever this test run (or the developer's shell) set that production would not have.
CLEARED = {
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "DJANGO_SETTINGS_MODULE",
    "WEBHOOK_RATE_LIMIT",
    "TRANSCRIPT_RETENTION_DAYS",
}


def check_deploy(**env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in CLEARED}
    production = {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "receptionist.example.com",
        "PUBLIC_BASE_URL": "https://receptionist.example.com",
        "TWILIO_AUTH_TOKEN": secrets.token_hex(16),
    }
    return subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={**base, **production, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_it_passes_check_deploy_with_production_settings():
    result = check_deploy()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
    assert "WARNING" not in result.stderr


@pytest.mark.parametrize(
    ("env", "warning"),
    [
        ({"SECURE_SSL_REDIRECT": "0"}, "security.W008"),
        ({"SECURE_HSTS_SECONDS": "0"}, "security.W004"),
    ],
)
def test_it_fails_check_deploy_when_a_protection_is_switched_off(env, warning):
    result = check_deploy(**env)
    assert result.returncode != 0
    assert warning in result.stderr
