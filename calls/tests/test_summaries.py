from __future__ import annotations

import pytest
from django.utils import timezone

from calls.models import CallLog, CallTurn, ToolCall
from calls.services import call_add_turn, call_end, call_record_intent
from calls.summaries import deterministic_summary
from calls.tasks import summarize_call
from calls.tests.factories import CallLogFactory
from telephony.services import callback_request_save
from voice.testing.fake_chat import FakeChatServer, http_error, text

pytestmark = pytest.mark.django_db


def a_status_call() -> CallLog:
    call = CallLogFactory()
    call_record_intent(call=call, intent="CHECK_STATUS")
    call_record_intent(call=call, intent="GET_HOURS")
    call_add_turn(call=call, role=CallTurn.Role.CALLER, text="is my civic ready")
    call_add_turn(call=call, role=CallTurn.Role.ASSISTANT, text="Yes, your 2018 Honda Civic is ready for pickup.")
    ToolCall.objects.create(call=call, name="get_work_order_status", result_summary="RO 1001: ready for pickup")
    return call


def test_it_summarises_a_finished_call_when_it_ends(django_capture_on_commit_callbacks):
    call = a_status_call()
    with django_capture_on_commit_callbacks(execute=True):
        call_end(call=call, outcome=CallLog.Outcome.RESOLVED)
    call.refresh_from_db()
    assert call.summary == (
        "Caller asked about their vehicle's status and asked about hours. "
        "Status given: RO 1001: ready for pickup. Handled by the receptionist."
    )


def test_it_does_not_summarise_twice():
    call = a_status_call()
    CallLog.objects.filter(pk=call.pk).update(ended_at=timezone.now(), summary="Written by hand.")
    assert summarize_call(call.pk) is False
    call.refresh_from_db()
    assert call.summary == "Written by hand."


def test_it_waits_until_the_call_has_ended():
    call = a_status_call()
    assert summarize_call(call.pk) is False
    assert summarize_call(987654) is False


def test_it_says_when_the_caller_could_not_be_verified():
    call = CallLogFactory(outcome=CallLog.Outcome.TRANSFERRED)
    call_record_intent(call=call, intent="CHECK_STATUS")
    ToolCall.objects.create(call=call, name="lookup_work_order", ok=False, result_summary="not verified")
    assert "could not be verified" in deterministic_summary(call)
    assert "Transferred to the shop." in deterministic_summary(call)


def test_it_rewrites_the_summary_when_a_callback_message_arrives_after_the_call(django_capture_on_commit_callbacks):
    call = a_status_call()
    with django_capture_on_commit_callbacks(execute=True):
        call_end(call=call, outcome=CallLog.Outcome.TRANSFERRED)
        callback_request_save(call=call, name="John Smith", number="+15555550123", reason="Wants the brake quote")
    call.refresh_from_db()
    assert "John Smith asked for a callback at •••0123: Wants the brake quote." in call.summary
    assert "0123" in call.summary and "+1555" not in call.summary


def test_it_lets_the_model_write_it_when_openai_is_configured(settings):
    call = a_status_call()
    CallLog.objects.filter(pk=call.pk).update(ended_at=timezone.now())
    with FakeChatServer([text("John asked if his Civic was ready; it is, pickup today.")]) as fake:
        settings.OPENAI_API_KEY, settings.OPENAI_BASE_URL = "sk-test", fake.base_url
        assert summarize_call(call.pk) is True
    call.refresh_from_db()
    assert call.summary == "John asked if his Civic was ready; it is, pickup today."
    transcript = fake.requests[0]["body"]["messages"][1]["content"]
    assert "caller: is my civic ready" in transcript


def test_it_falls_back_to_the_deterministic_summary_when_the_model_fails(settings):
    call = a_status_call()
    CallLog.objects.filter(pk=call.pk).update(ended_at=timezone.now())
    with FakeChatServer([http_error(500), http_error(500)]) as fake:
        settings.OPENAI_API_KEY, settings.OPENAI_BASE_URL = "sk-test", fake.base_url
        assert summarize_call(call.pk) is True
    call.refresh_from_db()
    assert call.summary.startswith("Caller asked about their vehicle's status")
