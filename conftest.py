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


@pytest.fixture(autouse=True)
def _celery_runs_tasks_in_the_test(request):
    """Tasks run inside the test that queued them, so a test sees their effect; with REDIS_URL the
    broker path itself is covered by the tests marked `celery_worker`, which run a real worker."""
    if request.node.get_closest_marker("celery_worker"):
        yield
        return
    from receptionist.celery import app

    saved = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager = app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = saved
