"""What the in-process bench scripts share: Django configured for a local run, and a scratch database.

Run as `python bench/<script>.py`, a script finds this module beside it (`from scratch import ...`).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def configure_django() -> None:
    """The project importable and settings that load whatever the shell exports (DEBUG off: the code
    paths production runs)."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "receptionist.settings")
    os.environ.setdefault("SECRET_KEY", "bench-secret-key-not-for-production")
    os.environ.setdefault("ALLOWED_HOSTS", "testserver")
    os.environ.setdefault("SECURE_SSL_REDIRECT", "0")


@contextlib.contextmanager
def scratch_database(name: str) -> Iterator[None]:
    """A fresh, migrated database `name` — a temporary SQLite file, or a database on DATABASE_URL's
    server — dropped afterwards. Call after django.setup()."""
    from django.conf import settings
    from django.db import connection, connections

    db = settings.DATABASES["default"]
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = db["ENGINE"].endswith("sqlite3")
        db.setdefault("TEST", {})["NAME"] = str(Path(tmp) / f"{name}.sqlite3") if sqlite else name
        old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                connections.close_all()  # the bench's threads' too: the database is dropped next
            connection.creation.destroy_test_db(old_name, verbosity=0)
