"""PostgreSQL restarts mid-call: the call goes on, and its CallLog is completed when the database returns.

The session's database connections go through a TCP proxy in front of the shared PostgreSQL; cutting
the proxy drops every connection and turns new ones away, which is what a client sees while the server
restarts (the shared server itself is never touched). Audio does not touch the database; turn writes
fail meanwhile and are retried; the call ends while the database is still away, and the record is
closed — every turn included — once it is back.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid

import pytest
from asgiref.sync import async_to_sync
from django.db import connection

from calls.models import CallLog
from tests.faults import TcpProxy
from voice.nlu.vocab import ashop_vocabulary
from voice.session import SessionState, VoiceSession, records
from voice.testing.transport import FakeTransport

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="restarts PostgreSQL's connections (DATABASE_URL)"),
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed"),
]


@pytest.fixture
def database_proxy():
    """Every new database connection of this test goes through a proxy the test can cut."""
    settings_dict = connection.settings_dict
    saved = settings_dict["HOST"], settings_dict["PORT"]
    proxy = TcpProxy(settings_dict["HOST"] or "127.0.0.1", int(settings_dict["PORT"] or 5432))
    connection.close()
    connection.close_pool()  # the pool keeps the address it was made with
    settings_dict["HOST"], settings_dict["PORT"] = "127.0.0.1", str(proxy.port)
    try:
        yield proxy
    finally:
        proxy.restore()
        connection.close()
        connection.close_pool()
        settings_dict["HOST"], settings_dict["PORT"] = saved
        proxy.close()


def test_it_completes_the_call_log_when_the_database_returns(shop, clock, database_proxy):
    question = "Where are you located?"  # answered from the shop the call already holds

    async def scenario():
        transport = FakeTransport()
        session = VoiceSession(
            shop=shop,
            transport=transport,
            engine="local",
            clock=clock,
            call_sid=f"CA{uuid.uuid4().hex}",
            channel="phone",
            caller_number="+15555550188",
            record_drain=0.5,
        )
        transport.attach(session)
        await session.start()
        await transport.wait_for(lambda: session.state == SessionState.LISTENING)
        assert database_proxy.accepted >= 1  # the call's record went through the proxy
        # The offline engine loads the shop's vocabulary at call start, in the background; on a busy
        # machine that may not be done yet, and an outage in a call's first moments is not this test's.
        await ashop_vocabulary(shop.pk)

        database_proxy.cut()  # PostgreSQL goes away mid-call
        spoken = len(transport.audio)
        await session.receive_text(question)
        await transport.wait_for(lambda: transport.events_of("metrics"))  # the answer was sent
        assert any("12 Elm Street" in line for line in transport.transcripts("assistant"))
        assert len(transport.audio) > spoken  # the caller was answered while the database was down

        await session.stop()  # the caller hangs up before the database is back
        assert session.state == SessionState.ENDED
        pending = set(records._LEFT_WRITING)
        assert pending, "the call's record writes should still be waiting for the database"

        database_proxy.restore()
        done, _ = await asyncio.wait(pending, timeout=60)
        assert done == pending, "the record writes never finished after the database came back"
        return session, transport

    session, transport = async_to_sync(scenario)()

    call = CallLog.objects.get(call_sid=session.call_sid)
    assert call.status == CallLog.Status.COMPLETED
    assert call.outcome == CallLog.Outcome.CALLER_HUNG_UP
    assert call.ended_at is not None
    said = list(call.turns.values_list("role", "text"))
    (answer,) = [line for line in transport.transcripts("assistant") if "12 Elm Street" in line]
    # Every turn is in the record, in order (a filler, if the answer took 1.5 s, is not a turn).
    assert said == [("assistant", shop.spoken_greeting), ("caller", question), ("assistant", answer)]
