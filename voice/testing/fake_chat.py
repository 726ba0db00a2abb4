"""A fake OpenAI Chat Completions server on 127.0.0.1, for tests and local runs.

It speaks the HTTP API the official `openai` SDK uses (`POST /v1/chat/completions`), so our engine
is exercised through the real SDK: request building, tool-call parsing, retries and timeouts. Each
request takes the next scripted reply; every request body is recorded for assertions.

    with FakeChatServer([tool_call("get_business_hours", {}), text("We close at 5:30 PM.")]) as fake:
        client = AsyncOpenAI(api_key="test", base_url=fake.base_url)

A scripted reply can also be an HTTP error (`http_error(500)`), a malformed body, or a reply that is
held until the test releases it (to drive client timeouts without sleeping in the test).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    body: dict[str, Any] | None = None
    raw: bytes | None = None
    hold: threading.Event | None = None


def text(content: str) -> Reply:
    return Reply(body={"message": {"role": "assistant", "content": content}, "finish_reason": "stop"})


def tool_call(name: str, arguments: dict[str, Any] | str, *more: tuple[str, dict[str, Any] | str]) -> Reply:
    """One assistant message calling one or more tools (`arguments` as a str is sent verbatim)."""
    calls = [(name, arguments), *more]
    tool_calls = [
        {
            "id": f"call_{i}_{fn}",
            "type": "function",
            "function": {"name": fn, "arguments": args if isinstance(args, str) else json.dumps(args)},
        }
        for i, (fn, args) in enumerate(calls)
    ]
    message = {"role": "assistant", "content": None, "tool_calls": tool_calls}
    return Reply(body={"message": message, "finish_reason": "tool_calls"})


def http_error(status: int, message: str = "scripted failure") -> Reply:
    return Reply(status=status, body={"error": {"message": message, "type": "server_error", "code": None}})


def malformed() -> Reply:
    return Reply(raw=b"{not json")


def held(reply: Reply, release: threading.Event) -> Reply:
    """`reply`, sent only once `release` is set (or after 30 s): the client's timeout fires first."""
    reply.hold = release
    return reply


@dataclass
class FakeChatServer:
    script: list[Reply]
    requests: list[dict[str, Any]] = field(default_factory=list)
    model: str = "gpt-4o-mini"

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                return

            def do_POST(self) -> None:  # noqa: N802 - stdlib name
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send(404, json.dumps({"error": {"message": f"no route {self.path}"}}).encode())
                    return
                reply = fake._next(body, {k.lower(): v for k, v in self.headers.items()})
                if reply.hold is not None:
                    reply.hold.wait(timeout=30)
                if reply.raw is not None:
                    self._send(reply.status, reply.raw)
                    return
                payload = reply.body or {}
                if reply.status == 200:
                    payload = fake._completion(payload)
                self._send(reply.status, json.dumps(payload).encode())

            def _send(self, status: int, data: bytes) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout): that is what the test wanted

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/v1"

    def _next(self, body: dict[str, Any], headers: dict[str, str]) -> Reply:
        with self._lock:
            self.requests.append({"body": body, "headers": headers})
            if not self.script:
                return http_error(500, "fake chat server: script exhausted")
            return self.script.pop(0)

    def _completion(self, choice: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-fake{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [{"index": 0, "logprobs": None, **choice}],
            "usage": {"prompt_tokens": 120, "completion_tokens": 12, "total_tokens": 132},
        }

    def start(self) -> FakeChatServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeChatServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
