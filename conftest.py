"""Shared fixtures (the test environment itself is set in testing_env.py, loaded before Django)."""

from __future__ import annotations

import os

import pytest
from django.conf import settings
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

# Fuzz tests (test_fuzz_*.py) run under a hypothesis profile: "ci" (the default) is derandomized so a
# CI run is repeatable and small enough to keep each test to a few seconds; HYPOTHESIS_PROFILE=dev
# explores ten times more examples with fresh randomness for a longer local run. Examples share the
# test's database (the django_db fixture is per test, not per example), which the tests allow for.
_FUZZ = hypothesis_settings(
    deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
hypothesis_settings.register_profile("ci", _FUZZ, derandomize=True, max_examples=25, print_blob=True)
hypothesis_settings.register_profile("dev", _FUZZ, max_examples=250)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


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


@pytest.fixture
def console_log():
    """What the console handler configured by settings.LOGGING writes (JSON lines outside DEBUG, as in
    tests and production) while the test runs; call it for the lines parsed so far."""
    import io
    import json
    import logging

    handler = next(h for h in logging.getLogger().handlers if h.get_name() == "console")
    stream = io.StringIO()
    previous = handler.setStream(stream)

    def lines() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]

    yield lines
    handler.setStream(previous)
