from __future__ import annotations

import datetime as dt

import pytest
from asgiref.sync import sync_to_async
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from calls import services
from calls.models import CallLog, CallTurn, ToolCall
from calls.services import ToolCallData
from calls.tests.factories import CallLogFactory
from shops.tests.factories import ShopFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def changed(monkeypatch):
    """Dashboard notifications sent, as (shop_id, call_id)."""
    sent: list[tuple[int, int]] = []
    monkeypatch.setattr(services, "call_changed", lambda *, shop_id, call_id: sent.append((shop_id, call_id)))
    return sent


def start(shop=None, **kwargs):
    defaults = {
        "shop": shop or ShopFactory(),
        "call_sid": "chat-1",
        "channel": CallLog.Channel.CHAT,
        "caller_number": "(555) 555-0123",
        "engine": "local",
    }
    return services.call_start(**{**defaults, **kwargs})


def _statements(queries) -> list[str]:
    """The SQL sent, without the savepoints the test's own transaction puts around atomic blocks."""
    return [q["sql"].split()[0] for q in queries if "SAVEPOINT" not in q["sql"]]


def test_it_starts_a_call_with_the_callers_number_in_e164_and_tells_the_dashboard(
    changed, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        call = start()
    assert call.caller_number == "+15555550123"
    assert call.status == CallLog.Status.IN_PROGRESS
    assert call.engine == "local"
    assert call.started_at is not None
    assert changed == [(call.shop_id, call.pk)]


def test_it_returns_the_same_call_when_started_twice(changed, django_capture_on_commit_callbacks):
    shop = ShopFactory()
    with django_capture_on_commit_callbacks(execute=True):
        first = start(shop)
        again = start(shop, caller_number="+15555550999")
    assert again.pk == first.pk
    assert again.caller_number == "+15555550123"
    assert CallLog.objects.count() == 1
    assert len(changed) == 1


def test_it_refuses_a_call_sid_already_used_by_another_shop():
    start()
    with pytest.raises(ValueError, match="another shop"):
        start(ShopFactory())


def test_it_stores_a_withheld_number_as_empty():
    assert start(caller_number="anonymous").caller_number == ""
    assert start(call_sid="chat-2", caller_number=None).caller_number == ""


def test_it_adds_turns_and_tool_calls_in_order():
    call = start()
    services.call_add_turn(call=call, role=CallTurn.Role.CALLER, text="are you open", intent="GET_HOURS")
    services.call_add_turn(call=call, role=CallTurn.Role.ASSISTANT, text="Yes, until 5:30 PM.", latency_ms=12)
    services.call_add_tool_call(call=call, name="get_business_hours", result_summary="x" * 900, latency_ms=-3)
    assert [t.role for t in call.turns.all()] == ["caller", "assistant"]
    tool = call.tool_calls.get()
    assert len(tool.result_summary) == services.SUMMARY_MAX
    assert tool.latency_ms == 0


def test_it_records_each_intent_once_and_picks_the_first_meaningful_one_as_primary():
    call = start()
    for intent in ["UNKNOWN", "CHECK_STATUS", "GET_HOURS", "CHECK_STATUS", "GOODBYE"]:
        services.call_record_intent(call=call, intent=intent)
    call.refresh_from_db()
    assert call.intents == ["UNKNOWN", "CHECK_STATUS", "GET_HOURS", "GOODBYE"]
    assert call.intent == "CHECK_STATUS"


@pytest.mark.parametrize(
    ("intents", "primary"),
    [
        ([], ""),
        (["UNKNOWN"], "UNKNOWN"),
        (["GOODBYE", "GET_HOURS"], "GET_HOURS"),
        (["TRANSFER_HUMAN"], "TRANSFER_HUMAN"),
    ],
)
def test_it_chooses_the_primary_intent(intents, primary):
    assert services.primary_intent(intents) == primary


def test_it_records_an_exchange_with_its_tools_intent_state_and_first_response_time():
    call = start(state={"v": 0})
    services.call_record_exchange(
        call=call,
        caller_text="what time do you close",
        reply_text="We close at 5:30 PM today.",
        intent="GET_HOURS",
        latency_ms=7,
        tool_calls=[ToolCallData(name="get_business_hours", arguments={"day": "today"}, result_summary="open")],
        state={"v": 0, "unknown_streak": 0},
        expected_version=0,
    )
    services.call_record_exchange(
        call=call,
        caller_text="bye",
        reply_text="Bye!",
        intent="GOODBYE",
        latency_ms=3,
        state=call.state,
        expected_version=1,
    )
    call.refresh_from_db()
    assert call.state == {"v": 2, "unknown_streak": 0}
    assert call.intents == ["GET_HOURS", "GOODBYE"]
    assert call.intent == "GET_HOURS"
    assert call.first_response_ms == 7
    assert [(t.role, t.intent) for t in call.turns.all()] == [
        ("caller", "GET_HOURS"),
        ("assistant", "GET_HOURS"),
        ("caller", "GOODBYE"),
        ("assistant", "GOODBYE"),
    ]
    assert ToolCall.objects.get().arguments == {"day": "today"}


def test_it_refuses_an_exchange_written_from_a_stale_state():
    call = start(state={"v": 0})
    stale = CallLog.objects.get(pk=call.pk)
    kwargs = {"caller_text": "hi", "reply_text": "Hello.", "intent": "UNKNOWN", "latency_ms": 1}
    services.call_record_exchange(call=call, state={"v": 0}, expected_version=0, **kwargs)
    with pytest.raises(services.StaleCallState):
        services.call_record_exchange(call=stale, state={"v": 0}, expected_version=0, **kwargs)
    assert CallTurn.objects.count() == 2


def test_it_ends_a_call_once_and_keeps_the_first_outcome(changed, django_capture_on_commit_callbacks):
    started = timezone.now() - dt.timedelta(seconds=95)
    call = CallLogFactory(started_at=started, status=CallLog.Status.IN_PROGRESS)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.call_end(
            call=call, outcome=CallLog.Outcome.TRANSFERRED, ended_at=started + dt.timedelta(seconds=95)
        )
        assert not services.call_end(call=call, outcome=CallLog.Outcome.CALLER_HUNG_UP)
    call.refresh_from_db()
    assert call.outcome == CallLog.Outcome.TRANSFERRED
    assert call.duration_seconds == 95
    assert call.status == CallLog.Status.COMPLETED
    assert changed == [(call.shop_id, call.pk)]


def test_closing_an_open_call_is_one_update_and_the_refresh():
    call = CallLogFactory(started_at=timezone.now() - dt.timedelta(seconds=30), status=CallLog.Status.IN_PROGRESS)
    with CaptureQueriesContext(connection) as queries:
        assert services.call_end(call=call, outcome=CallLog.Outcome.RESOLVED, error="the model stalled")
    assert _statements(queries) == ["UPDATE", "SELECT"]
    assert (call.outcome, call.error, call.status, call.duration_seconds) == (
        CallLog.Outcome.RESOLVED,
        "the model stalled",
        CallLog.Status.COMPLETED,
        30,
    )


def test_closing_keeps_an_outcome_and_an_error_already_recorded():
    call = CallLogFactory(outcome=CallLog.Outcome.TRANSFERRED, error="stream dropped")
    assert services.call_end(call=call, outcome=CallLog.Outcome.CALLER_HUNG_UP, error="later", duration_seconds=42)
    assert (call.outcome, call.error, call.duration_seconds) == (CallLog.Outcome.TRANSFERRED, "stream dropped", 42)


def test_it_fills_a_missing_outcome_on_a_call_closed_without_one():
    call = CallLogFactory(ended_at=timezone.now(), duration_seconds=10)
    assert not services.call_end(call=call, outcome=CallLog.Outcome.CALLER_HUNG_UP)
    call.refresh_from_db()
    assert call.outcome == CallLog.Outcome.CALLER_HUNG_UP
    assert call.duration_seconds == 10


def test_it_records_an_engine_fallback_keeping_the_first_reason():
    call = start(engine="openai")
    services.call_record_fallback(call=call, engine="local", reason="OpenAI timed out")
    services.call_record_fallback(call=call, engine="local", reason="second")
    call.refresh_from_db()
    assert (call.engine, call.fallback_reason) == ("local", "OpenAI timed out")


@pytest.mark.django_db(transaction=True)
async def test_it_offers_async_wrappers_for_the_voice_pipeline(monkeypatch):
    monkeypatch.setattr(services, "call_changed", lambda **kwargs: None)
    shop = await ShopFactory._meta.model.objects.acreate(
        name="Async Auto", slug="async-auto", phone_number="+15557001111", timezone="America/Chicago"
    )
    call = await services.acall_start(
        shop=shop, call_sid="CA-async", channel="phone", caller_number="+15555550123", engine="local"
    )
    await services.acall_add_turn(call=call, role="caller", text="hello")
    await services.acall_add_tool_call(call=call, name="get_location")
    await services.acall_record_intent(call=call, intent="GET_LOCATION")
    assert await services.acall_end(call=call, outcome=CallLog.Outcome.RESOLVED)
    assert await CallTurn.objects.filter(call=call).acount() == 1
    refreshed = await CallLog.objects.aget(pk=call.pk)
    assert (refreshed.intent, refreshed.outcome) == ("GET_LOCATION", "resolved")
    await sync_to_async(connections.close_all)()  # the ORM's worker thread keeps its own connection


def test_it_can_close_the_call_with_its_last_exchange(changed, django_capture_on_commit_callbacks):
    call = start(state={"v": 0})
    with django_capture_on_commit_callbacks(execute=True):
        services.call_record_exchange(
            call=call,
            caller_text="operator",
            reply_text="Sure, let me connect you.",
            intent="TRANSFER_HUMAN",
            latency_ms=4,
            state={"v": 0},
            expected_version=0,
            end_outcome=CallLog.Outcome.TRANSFERRED,
        )
    call.refresh_from_db()
    assert call.outcome == CallLog.Outcome.TRANSFERRED
    assert call.ended_at is not None
    assert call.turns.count() == 2


def test_it_takes_over_a_call_the_webhook_opened_without_a_conversation():
    shop = ShopFactory()
    webhook = start(shop, call_sid="CA-1", channel=CallLog.Channel.PHONE, engine="")
    assert webhook.state == {} and webhook.engine == ""
    call = start(shop, call_sid="CA-1", channel=CallLog.Channel.PHONE, engine="local", state={"v": 0, "turn": 0})
    again = start(shop, call_sid="CA-1", channel=CallLog.Channel.PHONE, engine="openai", state={"v": 0, "turn": 9})
    assert call.engine == again.engine == "local"  # the first taker's, never overwritten
    assert again.state == {"v": 0, "turn": 0}
    kwargs = {"caller_text": "hi", "reply_text": "Hello.", "intent": "UNKNOWN", "latency_ms": 1}
    services.call_record_exchange(call=call, state=call.state, expected_version=0, **kwargs)
    assert CallLog.objects.get(pk=call.pk).state["v"] == 1


def test_it_lets_the_voice_first_response_time_win_over_the_brains_latency():
    call = start(state={"v": 0})
    kwargs = {"caller_text": "hi", "reply_text": "Hello.", "intent": "UNKNOWN"}
    services.call_record_exchange(call=call, state={"v": 0}, expected_version=0, latency_ms=7, **kwargs)
    services.call_record_first_response(call=call, first_response_ms=480)
    services.call_record_exchange(call=call, state={"v": 1}, expected_version=1, latency_ms=9, **kwargs)
    call.refresh_from_db()
    assert call.first_response_ms == 480


def test_it_adds_usage_to_what_the_call_already_used():
    call = start(state={"v": 0})
    services.call_add_usage(
        call=call, usage={"model": "gpt-realtime", "responses": 1, "input_token_details": {"audio": 5}}
    )
    services.call_add_usage(call=call, usage={"responses": 2, "input_token_details": {"audio": 7, "text": 1}})
    call.refresh_from_db()
    assert call.usage == {"model": "gpt-realtime", "responses": 3, "input_token_details": {"audio": 12, "text": 1}}


def test_it_records_only_the_reply_when_the_callers_words_are_already_recorded():
    call = start(state={"v": 0})
    services.call_add_turn(call=call, role=CallTurn.Role.CALLER, text="where are you")
    services.call_record_exchange(
        call=call, caller_text="", reply_text="We're at 12 Elm Street.", intent="GET_LOCATION", latency_ms=3,
        state={"v": 0}, expected_version=0,
    )  # fmt: skip
    assert list(call.turns.values_list("role", "text")) == [
        ("caller", "where are you"),
        ("assistant", "We're at 12 Elm Street."),
    ]


def test_a_conversation_takes_over_the_webhooks_call_with_one_update_and_one_select():
    shop = ShopFactory()
    ringing = start(shop, call_sid="CA" + "2" * 32, channel="phone", engine="", status="ringing")
    with CaptureQueriesContext(connection) as queries:
        taken = start(shop, call_sid=ringing.call_sid, channel="phone", engine="openai", state={"turn": 0})
    assert _statements(queries) == ["UPDATE", "SELECT"]
    assert (taken.pk, taken.status, taken.engine, taken.state) == (
        ringing.pk,
        CallLog.Status.IN_PROGRESS,
        "openai",
        {"v": 0, "turn": 0},
    )
    assert taken.caller_number == "+15555550123"  # the full row, as the webhook stored it


def test_a_new_call_is_one_insert_and_a_repeated_webhook_gets_the_stored_call(changed):
    shop = ShopFactory()
    with CaptureQueriesContext(connection) as queries:
        first = start(shop, call_sid="CA" + "3" * 32, channel="phone", engine="", status="ringing")
    assert _statements(queries) == ["INSERT"]
    again = start(shop, call_sid=first.call_sid, channel="phone", engine="", status="ringing")
    assert again.pk == first.pk
    assert again.status == CallLog.Status.RINGING  # a repeated webhook takes nothing over
    assert CallLog.objects.count() == 1


def test_a_call_sid_of_another_shop_is_refused_and_left_as_it_was():
    theirs = start(call_sid="CA" + "4" * 32, channel="phone", engine="", status="ringing")
    for engine, state in (("", None), ("local", {"turn": 0})):
        with pytest.raises(ValueError, match="another shop"):
            start(ShopFactory(), call_sid=theirs.call_sid, channel="phone", engine=engine, state=state)
    theirs.refresh_from_db()
    assert (theirs.status, theirs.engine, theirs.state) == (CallLog.Status.RINGING, "", {})


def test_it_moves_a_ringing_phone_call_to_in_progress_when_a_conversation_takes_it_over():
    from calls.services import call_start
    from shops.tests.factories import ShopFactory

    shop = ShopFactory()
    ringing = call_start(
        shop=shop, call_sid="CA" + "1" * 32, channel="phone", caller_number="", engine="", status="ringing"
    )
    assert ringing.status == CallLog.Status.RINGING
    taken = call_start(shop=shop, call_sid=ringing.call_sid, channel="phone", caller_number="", engine="local")
    assert taken.pk == ringing.pk
    assert taken.status == CallLog.Status.IN_PROGRESS
    assert taken.engine == "local"
