"""Liveness and readiness probes for load balancers and `make run`'s banner."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up and serving requests; touches nothing else."""
    return JsonResponse({"status": "ok"})


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "not ready"
        logger.warning("readyz: database unreachable: %s", exc)
        return f"database: {exc.__class__.__name__}"
    return None


def _check_redis() -> str | None:
    if not settings.REDIS_URL:
        return None
    import redis

    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
        client.ping()
        client.close()
    except redis.RedisError as exc:
        logger.warning("readyz: redis unreachable: %s", exc)
        return f"redis: {exc.__class__.__name__}"
    return None


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready when the database and (if configured) Redis answer; 503 otherwise."""
    problems = [p for p in (_check_database(), _check_redis()) if p]
    checks = {"database": "ok", "redis": "ok" if settings.REDIS_URL else "not configured"}
    for problem in problems:
        name = problem.split(":", 1)[0]
        checks[name] = problem.split(":", 1)[1].strip()
    status = 503 if problems else 200
    return JsonResponse({"status": "ok" if not problems else "unavailable", "checks": checks}, status=status)
