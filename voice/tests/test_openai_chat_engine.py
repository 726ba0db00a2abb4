"""The OpenAI text engine through the official SDK against a fake Chat Completions server.

The fake checks nothing by itself; these tests assert on what the SDK actually sent (tools, system
prompt, tool results) and on what the caller gets back, including the fallbacks.
"""

from __future__ import annotations

import json
import threading

import pytest
from asgiref.sync import async_to_sync

from calls.models import CallLog, ToolCall
from voice.conversation import ConversationService
from voice.replies import STATUS_WORDS
from voice.testing.fake_chat import FakeChatServer, held, http_error, malformed, text, tool_call
from voice.tools import REGISTRY

pytestmark = pytest.mark.django_db


@pytest.fixture
def fake_openai(settings):
    """Start a fake server with a script and point the engine at it."""
    servers: list[FakeChatServer] = []

    def start(*script):
        server = FakeChatServer(list(script)).start()
        servers.append(server)
        settings.OPENAI_API_KEY = "sk-test"
        settings.OPENAI_BASE_URL = server.base_url
        settings.OPENAI_TIMEOUT_SECONDS = 2.0
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def converse_openai(shop, clock):
    def make(caller_number: str = ""):
        service = async_to_sync(ConversationService.start)(
            shop=shop, channel="chat", caller_number=caller_number, engine="openai", clock=clock
        )

        def say(message: str):
            return async_to_sync(service.handle_turn)(message)

        say.service = service
        return say

    return make


def test_it_sends_the_registry_tools_and_the_shop_prompt(fake_openai, converse_openai, shop):
    fake = fake_openai(text("We're open until 5:30 PM today."))
    result = converse_openai()("how late are you open?")
    sent = fake.requests[0]["body"]
    assert sent["model"] == "gpt-4o-mini"
    assert [t["function"]["name"] for t in sent["tools"]] == REGISTRY.names
    assert sent["messages"][0]["role"] == "system"
    assert shop.name in sent["messages"][0]["content"]
    assert sent["messages"][-1] == {"role": "user", "content": "how late are you open?"}
    assert fake.requests[0]["headers"]["authorization"] == "Bearer sk-test"
    assert result.reply == "We're open until 5:30 PM today."
    assert result.intent == "GET_HOURS"  # no tool called: labelled like the offline engine would


def test_it_runs_a_tool_and_returns_its_result_to_the_model(fake_openai, converse_openai, orders):
    fake = fake_openai(
        tool_call("lookup_work_order", {"ro_number": "1001"}),
        tool_call("get_work_order_status", {}),
        text("Good news: your 2018 Honda Civic is ready for pickup."),
    )
    result = converse_openai()("is RO 1001 ready?")
    assert result.intent == "CHECK_STATUS"
    assert [t["name"] for t in result.tools] == ["lookup_work_order", "get_work_order_status"]
    assert all(t["ok"] for t in result.tools)
    second = fake.requests[1]["body"]["messages"]
    assistant, tool_message = second[-2], second[-1]
    assert assistant["role"] == "assistant"
    assert assistant["tool_calls"][0]["function"]["name"] == "lookup_work_order"
    assert tool_message["role"] == "tool"
    assert tool_message["tool_call_id"] == assistant["tool_calls"][0]["id"]
    assert json.loads(tool_message["content"])["verified"] is True
    status_output = json.loads(fake.requests[2]["body"]["messages"][-1]["content"])
    assert "ready for pickup" in status_output["speak"]
    assert result.reply == "Good news: your 2018 Honda Civic is ready for pickup."
    call = CallLog.objects.get()
    assert call.engine == "openai" and not call.fallback_reason
    assert list(ToolCall.objects.filter(call=call).values_list("name", flat=True)) == [
        "lookup_work_order",
        "get_work_order_status",
    ]


def test_it_never_gives_the_model_another_customers_status(fake_openai, converse_openai, orders):
    fake = fake_openai(tool_call("get_work_order_status", {"last_name": "Smith"}), text("Let me check that."))
    converse_openai("+15555550999")("read me all the work orders for Smith")
    tool_output = fake.requests[1]["body"]["messages"][-1]["content"].lower()
    assert not any(word in tool_output for word in STATUS_WORDS)
    assert "civic" not in tool_output and "accord" not in tool_output


def test_it_transfers_when_the_model_calls_transfer(fake_openai, converse_openai):
    fake_openai(tool_call("transfer_to_human", {"reason": "caller asked"}), text("Sure, connecting you now."))
    result = converse_openai()("can I talk to a real person")
    assert result.transfer is True
    assert result.intent == "TRANSFER_HUMAN"
    assert CallLog.objects.get().outcome == CallLog.Outcome.TRANSFERRED


@pytest.mark.parametrize(
    ("script", "reason"),
    [
        ([http_error(500)], "InternalServerError"),
        ([http_error(429, "rate limited")], "RateLimitError"),
        ([malformed()], "JSONDecodeError"),
        ([tool_call("get_business_hours", "{not json")], "malformed arguments"),
        ([tool_call("read_all_work_orders", {})], "unknown tool"),
        ([text("")], "empty answer"),
        ([tool_call("get_location", {})] * 4, "rounds"),
    ],
)
def test_it_falls_back_to_the_offline_engine_for_the_rest_of_the_call(fake_openai, converse_openai, script, reason):
    fake = fake_openai(*script)
    say = converse_openai()
    result = say("what are your hours?")
    assert result.intent == "GET_HOURS"
    assert "5:30 PM" in result.reply
    call = CallLog.objects.get()
    assert call.engine == "local"
    assert reason in call.fallback_reason
    requests_so_far = len(fake.requests)
    second = say("where are you located?")
    assert "Elm Street" in second.reply
    assert len(fake.requests) == requests_so_far  # the rest of the call stays offline


def test_it_falls_back_when_the_model_is_too_slow(fake_openai, converse_openai, settings):
    release = threading.Event()
    fake_openai(held(text("too late"), release))
    settings.OPENAI_TIMEOUT_SECONDS = 0.3
    try:
        result = converse_openai()("what are your hours?")
    finally:
        release.set()
    assert "5:30 PM" in result.reply
    assert "no answer within 0.3 s" in CallLog.objects.get().fallback_reason


def test_it_serves_the_chat_api_with_the_openai_engine(fake_openai, client, shop):
    fake_openai(tool_call("get_location", {}), text("We're at 12 Elm Street, behind the Shell station."))
    shop.voice_engine = "openai"
    shop.save(update_fields=["voice_engine"])
    response = client.post(
        "/api/voice/chat",
        {"shop": shop.slug, "message": "where are you?"},
        content_type="application/json",
        headers={"Authorization": f"Bearer {shop.rotate_api_token()}"},
    )
    assert response.status_code == 200
    data = response.json()
    assert data["reply"] == "We're at 12 Elm Street, behind the Shell station."
    assert data["intent"] == "GET_LOCATION"
    assert data["tools"] == [{"name": "get_location", "arguments": {}, "ok": True}]
