"""A database of its own for a server a test starts as a subprocess (Daphne end-to-end tests)."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


@contextlib.contextmanager
def own_database_url(prefix: str, tmp_dir: Path) -> Iterator[str]:
    """The DATABASE_URL of a fresh, empty database: on DATABASE_URL's PostgreSQL server when the suite
    runs there (dropped afterwards, whoever is still connected), else a SQLite file in `tmp_dir`."""
    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith("postgres"):
        yield f"sqlite:///{tmp_dir / 'db.sqlite3'}"
        return
    import psycopg

    parts = urlsplit(database_url)
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
