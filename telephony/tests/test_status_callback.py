from __future__ import annotations

import datetime as dt
import logging

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from calls.models import CallLog
from calls.services import call_end
from calls.tests.factories import CallLogFactory
from telephony.tests.fakes import call_params

pytestmark = pytest.mark.django_db

STATUS = "/telephony/twilio/status/"


def _status(twilio, call, call_status="completed", **extra):
    params = call_params(CallSid=call.call_sid if call else "CA" + "9" * 32, CallStatus=call_status, **extra)
    return twilio.post(STATUS, params)


def test_it_closes_the_call_log(twilio):
    call = CallLogFactory(started_at=timezone.now() - dt.timedelta(seconds=50))
    response = _status(twilio, call, CallDuration="42", CallbackSource="call-progress-events", SequenceNumber="0")
    assert response.status_code == 204
    call.refresh_from_db()
    assert call.status == CallLog.Status.COMPLETED
    assert call.ended_at is not None
    assert call.duration_seconds == 42
    assert call.outcome == CallLog.Outcome.CALLER_HUNG_UP


def test_closing_the_call_takes_one_lookup_one_update_and_the_refresh(twilio):
    call = CallLogFactory()
    with CaptureQueriesContext(connection) as queries:
        _status(twilio, call, CallDuration="42")
    statements = [q["sql"].split()[0] for q in queries if "SAVEPOINT" not in q["sql"]]
    assert statements == ["SELECT", "UPDATE", "SELECT"]  # Twilio ends every call with this request
    call.refresh_from_db()
    assert (call.duration_seconds, call.outcome) == (42, CallLog.Outcome.CALLER_HUNG_UP)


def test_it_keeps_the_outcome_the_session_recorded(twilio):
    call = CallLogFactory(outcome=CallLog.Outcome.RESOLVED)
    _status(twilio, call, CallDuration="30")
    call.refresh_from_db()
    assert call.outcome == CallLog.Outcome.RESOLVED
    assert call.status == CallLog.Status.COMPLETED


def test_it_changes_nothing_the_second_time(twilio):
    call = CallLogFactory()
    _status(twilio, call, CallDuration="42")
    call.refresh_from_db()
    first = (call.ended_at, call.duration_seconds, call.outcome, call.status)

    assert _status(twilio, call, "failed", CallDuration="99").status_code == 204
    call.refresh_from_db()
    assert (call.ended_at, call.duration_seconds, call.outcome, call.status) == first


def test_it_leaves_a_call_the_session_already_closed_as_it_was(twilio):
    call = CallLogFactory(started_at=timezone.now() - dt.timedelta(seconds=30))
    call_end(call=call, outcome=CallLog.Outcome.TRANSFERRED)
    before = (call.ended_at, call.duration_seconds, call.outcome, call.status)
    with CaptureQueriesContext(connection) as queries:
        _status(twilio, call, CallDuration="61")
    call.refresh_from_db()
    assert (call.ended_at, call.duration_seconds, call.outcome, call.status) == before
    assert not [q["sql"] for q in queries if not q["sql"].startswith("SELECT")]  # nothing to write, nothing written


def test_it_fills_the_outcome_when_the_session_closed_without_one(twilio):
    call = CallLogFactory()
    CallLog.objects.filter(pk=call.pk).update(ended_at=timezone.now(), status=CallLog.Status.COMPLETED)
    _status(twilio, call, "completed")
    call.refresh_from_db()
    assert call.outcome == CallLog.Outcome.CALLER_HUNG_UP


@pytest.mark.parametrize(
    ("call_status", "outcome"),
    [
        ("busy", CallLog.Outcome.ABANDONED),
        ("no-answer", CallLog.Outcome.ABANDONED),
        ("canceled", CallLog.Outcome.ABANDONED),
        ("failed", CallLog.Outcome.FAILED),
    ],
)
def test_it_records_calls_that_never_got_going(twilio, call_status, outcome):
    call = CallLogFactory()
    _status(twilio, call, call_status, CallDuration="0")
    call.refresh_from_db()
    assert call.outcome == outcome
    assert call.status == CallLog.Status.COMPLETED
    assert call.duration_seconds == 0


def test_it_works_out_the_duration_when_twilio_sends_none(twilio):
    call = CallLogFactory(started_at=timezone.now() - dt.timedelta(seconds=30))
    _status(twilio, call)
    call.refresh_from_db()
    assert 29 <= call.duration_seconds <= 40


@pytest.mark.parametrize("call_status", ["ringing", "in-progress", "queued"])
def test_it_ignores_statuses_that_do_not_end_the_call(twilio, call_status):
    call = CallLogFactory(status=CallLog.Status.IN_PROGRESS)
    assert _status(twilio, call, call_status).status_code == 204
    call.refresh_from_db()
    assert call.status == CallLog.Status.IN_PROGRESS
    assert call.ended_at is None
    assert call.outcome == ""


def test_it_answers_204_and_logs_a_call_it_never_saw(twilio, caplog):
    with caplog.at_level(logging.INFO, logger="telephony.views"):
        response = _status(twilio, None)
    assert response.status_code == 204
    assert "never logged" in caplog.text
    assert not CallLog.objects.exists()


def test_it_refuses_an_unsigned_status_callback(twilio):
    call = CallLogFactory()
    response = twilio.post(STATUS, call_params(CallSid=call.call_sid, CallStatus="completed"), sign=False)
    assert response.status_code == 403
    call.refresh_from_db()
    assert call.ended_at is None
