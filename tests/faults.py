"""Infrastructure that a test can break and mend: a private redis-server, a TCP proxy to cut.

Both listen on 127.0.0.1 on a free port of their own, so a test never touches the shared Redis on 6379
or restarts the shared PostgreSQL: it points the code at the private server or the proxy instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
_PRODUCTION_REDIS_SETTINGS = """
import json, django
from django.conf import settings
django.setup()
print(json.dumps({name: getattr(settings, name) for name in (
    "CHANNEL_LAYERS", "CACHES", "CELERY_BROKER_URL", "CELERY_BROKER_TRANSPORT_OPTIONS")}))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, timeout: float = 10.0) -> None:
    """Wait until something accepts connections on 127.0.0.1:`port`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on port {port} after {timeout} s") from None
            threading.Event().wait(0.05)  # a short poll between connection attempts


class RedisServer:
    """A throwaway redis-server (no persistence) that can be stopped, hung and brought back on its port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> bool:
        return shutil.which("redis-server") is not None

    def start(self) -> None:
        """Start it (on the same port after a stop); a no-op while it runs."""
        if self._process is not None:
            return
        self._process = subprocess.Popen(  # noqa: S603 - a fixed local binary
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],  # noqa: S607
            stdout=subprocess.DEVNULL,
        )
        wait_listening(self.port)

    def stop(self) -> None:
        """Kill it: open connections reset, new ones refused (Redis down)."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    def hang(self) -> None:
        """Freeze it: connections stay open and nothing answers (a Redis that hangs, a half-open link)."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def unhang(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)

    def close(self) -> None:
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError):
                self._process.send_signal(signal.SIGCONT)
        self.stop()


class TcpProxy:
    """Forwards 127.0.0.1:`port` to an upstream address. `cut()` drops every open connection and turns
    new ones away (closed as soon as accepted), as a restarting server does; `restore()` lets them
    through again."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._down = False
        self.accepted = 0  # connections let through
        self._closed = False
        threading.Thread(target=self._accept_loop, name="tcp-proxy", daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            self._down = True
            sockets, self._open = self._open, set()
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def restore(self) -> None:
        with self._lock:
            self._down = False

    def close(self) -> None:
        self._closed = True
        self.cut()
        self._listener.close()

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                down = self._down
            if down:
                client.close()
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open.update((client, server))
                self.accepted += 1
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
            with self._lock:
                self._open.discard(source)
                self._open.discard(sink)
            source.close()  # each pump closes the socket it reads; the other pump closes the other one


def production_redis_settings(url: str) -> dict[str, Any]:
    """What settings.py makes of REDIS_URL=`url` (channel layer, cache, broker), read in a fresh
    interpreter exactly as a server process would, so a test uses production's timeouts, not a copy."""
    env = {**os.environ, "REDIS_URL": url, "DJANGO_SETTINGS_MODULE": "receptionist.settings"}
    result = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", _PRODUCTION_REDIS_SETTINGS],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr)
    return json.loads(result.stdout.strip().splitlines()[-1])


@contextlib.contextmanager
def celery_broker(production: dict[str, Any]) -> Iterator[None]:
    """Queue tasks for real (not eagerly) to the broker in `production` (production_redis_settings)."""
    from receptionist.celery import app

    keys = ("broker_url", "broker_transport_options", "task_always_eager")
    saved = {key: app.conf[key] for key in keys}
    app.conf.broker_url = production["CELERY_BROKER_URL"]
    app.conf.broker_transport_options = production["CELERY_BROKER_TRANSPORT_OPTIONS"]
    app.conf.task_always_eager = False
    _forget_celery_connections(app)
    try:
        yield
    finally:
        for key, value in saved.items():
            app.conf[key] = value
        _forget_celery_connections(app)


def _forget_celery_connections(app: Any) -> None:
    """Celery keeps the broker's connection pools (and so their URL) from first use. They live in kombu's
    global registry, keyed by URL, and other tests share them: drop our references, close nothing."""
    app._pool = None
    app.amqp._producer_pool = None
