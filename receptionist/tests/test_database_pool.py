"""PostgreSQL connections come from psycopg's pool, sized by DATABASE_POOL_MAX_SIZE, and stay within it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.db import close_old_connections, connection

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import json, django
from django.conf import settings
django.setup()
db = settings.DATABASES["default"]
print(json.dumps({"pool": db.get("OPTIONS", {}).get("pool"), "conn_max_age": db["CONN_MAX_AGE"],
                  "server_side_cursors_off": db.get("DISABLE_SERVER_SIDE_CURSORS", False)}))
"""
POSTGRES = "postgres://postgres@127.0.0.1:5432/receptionist"


def database_settings(**env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "CONN_MAX_AGE"))}
    base.update(DJANGO_SETTINGS_MODULE="receptionist.settings", DATABASE_URL=POSTGRES, **env)
    return subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", PROBE], cwd=ROOT, env=base, capture_output=True, text=True, timeout=60
    )


def loaded(**env: str) -> dict:
    result = database_settings(**env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_it_pools_postgresql_connections_by_default():
    db = loaded()
    assert db["pool"]["max_size"] == 10 and db["pool"]["min_size"] == 2
    assert db["pool"]["timeout"] <= 2  # a database that is away must not hold a call's thread long
    assert db["conn_max_age"] == 0  # Django refuses persistent connections with a pool


def test_it_sizes_the_pool_from_the_environment_or_turns_it_off():
    assert loaded(DATABASE_POOL_MAX_SIZE="4")["pool"]["max_size"] == 4
    assert loaded(DATABASE_POOL_MAX_SIZE="1")["pool"] == {"min_size": 1, "max_size": 1, "timeout": 2, "max_idle": 300}
    behind_pgbouncer = loaded(DATABASE_POOL_MAX_SIZE="0", CONN_MAX_AGE="60", DATABASE_DISABLE_SERVER_SIDE_CURSORS="1")
    assert behind_pgbouncer == {"pool": None, "conn_max_age": 60, "server_side_cursors_off": True}


def test_it_refuses_a_negative_pool_size():
    result = database_settings(DATABASE_POOL_MAX_SIZE="-1")
    assert result.returncode != 0 and "DATABASE_POOL_MAX_SIZE" in result.stderr


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the pool is PostgreSQL's (DATABASE_URL)")
def test_it_never_opens_more_connections_than_the_pool_holds():
    """Thirty threads at once (requests, consumers, tasks) share the pool's max_size connections: the
    ones that find none free wait for one, and the server never sees more."""
    max_size = connection.settings_dict["OPTIONS"]["pool"]["max_size"]
    threads = 3 * max_size
    everyone_in = threading.Barrier(threads)
    seen: list[int] = []
    errors: list[BaseException] = []

    def request() -> None:
        try:
            everyone_in.wait(timeout=30)
            with connection.cursor() as cursor:
                # Hold the connection a moment, so that the threads overlap, and count the server's.
                cursor.execute(
                    "SELECT (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()) "
                    "FROM pg_sleep(0.05)"
                )
                seen.append(cursor.fetchone()[0])
        except BaseException as exc:  # reported below, with the thread's own error
            errors.append(exc)
        finally:
            close_old_connections()  # what Django does at the end of each request: back to the pool

    workers = [threading.Thread(target=request) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert not errors, errors
    assert len(seen) == threads
    # The test's own connection comes from the same pool.
    assert max(seen) <= max_size, f"{max(seen)} connections for a pool of {max_size}"
