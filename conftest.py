"""Shared fixtures (the test environment itself is set in testing_env.py, loaded before Django)."""

from __future__ import annotations

import pytest
from django.conf import settings


@pytest.fixture(autouse=True, scope="session")
def _plain_static_files():
    """Production serves hashed static files collected by `collectstatic`; tests render templates
    without collecting, so they use the plain storage (same URLs minus the hash)."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.WHITENOISE_AUTOREFRESH = True
    settings.WHITENOISE_USE_FINDERS = True
