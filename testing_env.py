"""Loaded by pytest (`-p testing_env` in pyproject) before pytest-django reads the settings.

Tests run with production-style settings (DEBUG off), so they need what production needs: a secret
key and allowed hosts. The database and Redis come from DATABASE_URL / REDIS_URL when CI sets them.
"""

from __future__ import annotations

import os

os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
