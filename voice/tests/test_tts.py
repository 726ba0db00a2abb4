from __future__ import annotations

import asyncio
import os
import shutil

import pytest

from voice import audio
from voice.audio import MULAW_8K, PCM16_16K, PCM16_24K
from voice.testing.speech import caller_audio, caller_frames, through_phone
from voice.tts import Synthesizer, TTSError, TTSUnavailable, TTSVoice, split_sentences

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")

REPLY = "Good news, your Honda Civic is ready for pickup. We are open until six tonight."


def test_it_splits_a_reply_into_sentences_with_a_short_first_chunk():
    assert split_sentences(REPLY) == [
        "Good news, your Honda Civic is ready for pickup.",
        "We are open until six tonight.",
    ]
    long_first = "Thanks for calling Demo Auto Repair on Main Street, this is the automated assistant. Hi."
    assert split_sentences(long_first)[0] == "Thanks for calling Demo Auto Repair on Main Street,"
    assert split_sentences("  ") == []


async def test_it_says_how_to_install_espeak_when_it_is_missing():
    synth = Synthesizer(binary="/nonexistent/espeak-ng")
    with pytest.raises(TTSUnavailable, match="apt-get install espeak-ng"):
        await synth.synthesize("hello", MULAW_8K)
    with pytest.raises(TTSUnavailable):
        synth.synthesize_blocking("hello", MULAW_8K)


async def test_it_reports_a_failing_synthesiser(tmp_path):
    broken = tmp_path / "espeak-ng"
    broken.write_text("#!/bin/sh\necho 'voice not found' >&2\nexit 1\n")
    broken.chmod(0o755)
    with pytest.raises(TTSError, match="voice not found"):
        await Synthesizer(binary=str(broken)).synthesize("hello", MULAW_8K)


@needs_espeak
async def test_it_synthesizes_phone_audio_of_a_plausible_length():
    synth = Synthesizer()
    mulaw = await synth.synthesize(REPLY, MULAW_8K)
    seconds = MULAW_8K.duration_ms(len(mulaw)) / 1000
    words = len(REPLY.split())
    assert 0.5 * words / 165 * 60 < seconds < 2.0 * words / 165 * 60
    assert not audio.is_silent(mulaw, MULAW_8K)


@needs_espeak
async def test_it_resamples_to_the_requested_format():
    synth = Synthesizer()
    mulaw = await synth.synthesize("Your car is ready.", MULAW_8K)
    pcm16k = await synth.synthesize("Your car is ready.", PCM16_16K)
    pcm24k = await synth.synthesize("Your car is ready.", PCM16_24K)
    ms = MULAW_8K.duration_ms(len(mulaw))
    assert abs(PCM16_16K.duration_ms(len(pcm16k)) - ms) < 5
    assert abs(PCM16_24K.duration_ms(len(pcm24k)) - ms) < 5


@needs_espeak
async def test_it_caches_fixed_phrases_and_evicts_the_least_recently_used():
    synth = Synthesizer(cache_size=2)
    first = await synth.synthesize("Thanks for calling.", MULAW_8K)
    assert await synth.synthesize("Thanks  for calling.", MULAW_8K) is first  # same text after whitespace
    await synth.synthesize("Goodbye.", MULAW_8K)
    await synth.synthesize("One moment.", MULAW_8K)  # evicts "Thanks for calling."
    assert synth.cache_hits == 1
    await synth.synthesize("Thanks for calling.", MULAW_8K)
    assert synth.cache_misses == 4
    assert await synth.synthesize("Goodbye.", PCM16_16K) != await synth.synthesize("Goodbye.", MULAW_8K)


@needs_espeak
async def test_it_streams_a_reply_sentence_by_sentence():
    synth = Synthesizer(cache_size=0)
    chunks = [chunk async for chunk in synth.stream(REPLY, MULAW_8K)]
    assert len(chunks) == 2
    whole = await synth.synthesize(REPLY, MULAW_8K)
    assert abs(len(b"".join(chunks)) - len(whole)) < len(whole) * 0.25


@needs_espeak
async def test_it_reads_text_that_looks_like_an_option():
    assert await Synthesizer().synthesize("-v is not an option here", MULAW_8K)


@needs_espeak
def test_it_makes_caller_frames_like_a_twilio_stream():
    frames = caller_frames("Is my car ready?", lead_ms=200, trail_ms=300)
    assert all(len(f) == 160 for f in frames)
    assert frames[0] == b"\xff" * 160 and frames[-1] == b"\xff" * 160
    loud = [f for f in frames if not audio.is_silent(f, MULAW_8K)]
    assert 0.5 < len(loud) * 0.02 < 3.0


@needs_espeak
def test_it_runs_speech_through_a_phone_line():
    pcm = caller_audio("Hello there", fmt=PCM16_16K, voice=TTSVoice("en-us+f3", rate=150))
    phoned = through_phone(pcm, 16000)
    assert abs(len(phoned) - len(pcm)) <= 8
    assert abs(audio.dbfs(phoned, PCM16_16K) - audio.dbfs(pcm, PCM16_16K)) < 3


async def test_it_stops_espeak_when_synthesis_is_cancelled(tmp_path):
    pidfile = tmp_path / "pid"
    slow = tmp_path / "espeak-ng"
    slow.write_text(f"#!/bin/sh\necho $$ > {pidfile}\nexec sleep 30\n")
    slow.chmod(0o755)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(Synthesizer(binary=str(slow)).synthesize("hello", MULAW_8K), timeout=1.0)
    pid = int(pidfile.read_bytes())
    with pytest.raises(ProcessLookupError):  # killed and reaped, not left running
        os.kill(pid, 0)


@needs_espeak
async def test_it_leaves_no_synthesis_running_when_a_stream_is_abandoned():
    synth = Synthesizer(cache_size=0)
    stream = synth.stream("First sentence here. " + "And a much longer second sentence follows it. " * 5, MULAW_8K)
    assert await anext(stream)
    await stream.aclose()  # barge-in: the caller interrupted after the first sentence
