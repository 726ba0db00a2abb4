"""ConversationService: engine choice, fallback, records, sessions."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync

from calls.models import CallLog, CallTurn
from shops.models import Shop
from shops.tests.factories import ShopFactory
from voice import engines
from voice.conversation import ConversationService, SessionClosed
from voice.engines.base import EngineError
from voice.intents import Intent

pytestmark = pytest.mark.django_db


class FailingEngine:
    name = "openai"

    async def respond(self, turn):
        await turn.tools.run("get_location", {})
        raise EngineError("upstream timed out")


class BrokenLocalEngine:
    name = "local"

    async def respond(self, turn):
        raise RuntimeError("bug")


def start(shop, **kwargs):
    return async_to_sync(ConversationService.start)(shop=shop, channel="chat", **kwargs)


@pytest.mark.parametrize(
    ("shop_engine", "setting", "key", "chosen"),
    [
        ("auto", "auto", "", "local"),
        ("auto", "auto", "sk-test", "openai"),
        ("local", "auto", "sk-test", "local"),
        ("openai", "auto", "", "local"),  # no key: offline
        ("auto", "local", "sk-test", "local"),
        ("auto", "openai", "sk-test", "openai"),
    ],
)
def test_it_picks_the_engine_from_the_shop_then_the_settings(settings, shop_engine, setting, key, chosen):
    settings.VOICE_ENGINE = setting
    settings.OPENAI_API_KEY = key
    assert engines.engine_name_for(Shop(voice_engine=shop_engine)) == chosen


def test_it_falls_back_to_the_offline_engine_for_the_rest_of_the_call(shop, monkeypatch):
    monkeypatch.setitem(engines.ENGINES, "openai", f"{__name__}.FailingEngine")
    service = start(shop, engine="openai")
    assert service.call.engine == "openai"
    result = async_to_sync(service.handle_turn)("where are you located")
    assert result.intent == Intent.GET_LOCATION
    assert "12 Elm Street" in result.reply
    call = CallLog.objects.get(pk=service.call.pk)
    assert call.engine == "local"
    assert call.fallback_reason.startswith("openai failed: EngineError: upstream timed out")
    # The failed engine's tool call is on record too; the next turn goes straight to the offline engine.
    assert [t.name for t in call.tool_calls.all()] == ["get_location", "get_location"]
    later = async_to_sync(ConversationService.resume)(shop=shop, call_sid=service.call_sid)
    assert later.engine.name == "local"


def test_it_falls_back_when_an_engine_module_is_missing(shop, monkeypatch):
    monkeypatch.setitem(engines.ENGINES, "openai", "voice.engines.does_not_exist.Engine")
    service = start(shop, engine="openai")
    assert service.engine.name == "local"
    assert CallLog.objects.get(pk=service.call.pk).fallback_reason.startswith("openai engine unavailable")


def test_it_hands_the_caller_to_a_person_when_the_offline_engine_breaks(shop, monkeypatch):
    monkeypatch.setitem(engines.ENGINES, "local", f"{__name__}.BrokenLocalEngine")
    service = start(shop, engine="local")
    result = async_to_sync(service.handle_turn)("hello")
    assert result.transfer
    call = CallLog.objects.get(pk=service.call.pk)
    assert call.outcome == CallLog.Outcome.FAILED
    assert "bug" in call.error


def test_it_records_the_greeting_and_resumes_only_within_the_shop(shop):
    service = start(shop, engine="local")
    greeting = async_to_sync(service.greet)()
    assert greeting == shop.spoken_greeting
    assert CallTurn.objects.get(call=service.call).text == greeting
    assert async_to_sync(ConversationService.resume)(shop=ShopFactory(), call_sid=service.call_sid) is None
    resumed = async_to_sync(ConversationService.resume)(shop=shop, call_sid=service.call_sid)
    assert resumed.call.pk == service.call.pk


def test_it_refuses_turns_after_the_conversation_ended(shop):
    service = start(shop, engine="local")
    assert async_to_sync(service.handle_turn)("bye").end
    with pytest.raises(SessionClosed):
        async_to_sync(service.handle_turn)("hello?")


def test_it_says_goodbye_when_a_phone_call_runs_past_the_shops_limit(shop):
    import datetime as dt

    from voice.tests.conftest import TUESDAY_10AM

    now = [TUESDAY_10AM]
    service = async_to_sync(ConversationService.start)(
        shop=shop, channel="phone", engine="local", clock=lambda: now[0], call_sid="CA-long"
    )
    now[0] = TUESDAY_10AM + dt.timedelta(seconds=shop.max_call_seconds + 1)
    result = async_to_sync(service.handle_turn)("are you open")
    assert result.end
    assert "out of time" in result.reply


def test_it_takes_over_a_call_log_the_twilio_webhook_opened(shop):
    from telephony.services import phone_call_start

    phone_call_start(shop=shop, call_sid="CA-webhook", caller_number="+15555550123")
    service = async_to_sync(ConversationService.start)(shop=shop, channel="phone", call_sid="CA-webhook")
    async_to_sync(service.handle_turn)("where are you located")  # no SessionBusy
    phone_call_start(shop=shop, call_sid="CA-webhook-2", caller_number="+15555550123")
    resumed = async_to_sync(ConversationService.resume)(shop=shop, call_sid="CA-webhook-2")
    assert resumed is not None
    async_to_sync(resumed.handle_turn)("where are you located")
    assert CallLog.objects.get(call_sid="CA-webhook").state["v"] == 1
    assert CallLog.objects.get(call_sid="CA-webhook-2").state["v"] == 1


def test_it_records_only_the_reply_when_the_callers_words_are_already_recorded(shop):
    service = start(shop)
    async_to_sync(service.handle_turn)("where are you located", record_caller=False)
    assert list(service.call.turns.values_list("role", flat=True)) == ["assistant"]
    assert [role for role, _ in service.state.history] == ["assistant"]
