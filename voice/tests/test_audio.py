from __future__ import annotations

import io
import math
import struct
import wave

import pytest

from voice import audio
from voice.audio import MULAW_8K, PCM16_16K, PCM16_24K, AudioConverter, AudioFormat, FrameBuffer, Resampler


def tone(freq: float, ms: int, rate: int, amplitude: int = 8000) -> bytes:
    n = rate * ms // 1000
    return struct.pack(f"<{n}h", *(int(amplitude * math.sin(2 * math.pi * freq * i / rate)) for i in range(n)))


def test_it_describes_formats():
    assert MULAW_8K.frame_bytes == 160
    assert PCM16_24K.frame_bytes == 960
    assert PCM16_16K.bytes_for_ms(30) == 960
    assert MULAW_8K.duration_ms(8000) == 1000
    assert str(MULAW_8K) == "mulaw/8000"
    with pytest.raises(ValueError):
        AudioFormat("opus", 48000)  # type: ignore[arg-type]


def test_it_round_trips_mulaw_within_quantisation_error():
    pcm = tone(440, 100, 8000)
    back = audio.mulaw_to_pcm16(audio.pcm16_to_mulaw(pcm))
    assert len(back) == len(pcm)
    samples = struct.unpack(f"<{len(pcm) // 2}h", pcm)
    decoded = struct.unpack(f"<{len(back) // 2}h", back)
    assert max(abs(a - b) for a, b in zip(samples, decoded, strict=True)) < 300


def test_it_uses_0xff_as_mulaw_silence():
    assert audio.pcm16_to_mulaw(b"\x00\x00" * 4) == b"\xff" * 4
    assert audio.silence(20) == b"\xff" * 160
    assert audio.silence(20, PCM16_16K) == b"\x00" * 640
    assert audio.rms(audio.silence(100), MULAW_8K) == 0
    assert audio.is_silent(audio.silence(20), MULAW_8K)


def test_it_resamples_a_stream_in_chunks_like_a_whole_buffer():
    pcm = tone(300, 1000, 8000)
    whole = audio.resample(pcm, 8000, 24000)
    resampler = Resampler(8000, 24000)
    chunked = b"".join(resampler.process(pcm[i : i + 320]) for i in range(0, len(pcm), 320))
    assert chunked == whole
    assert abs(len(whole) - 3 * len(pcm)) <= 8


def test_it_keeps_odd_bytes_for_the_next_chunk():
    pcm = tone(300, 100, 16000)
    resampler = Resampler(16000, 16000)
    out = resampler.process(pcm[:101]) + resampler.process(pcm[101:])
    assert out == pcm


@pytest.mark.parametrize(("src_rate", "dst_rate"), [(8000, 16000), (16000, 8000), (8000, 24000), (24000, 8000)])
def test_it_keeps_a_tone_loud_across_rates(src_rate, dst_rate):
    pcm = tone(400, 500, src_rate)
    out = audio.resample(pcm, src_rate, dst_rate)
    assert abs(len(out) / len(pcm) - dst_rate / src_rate) < 0.01
    assert abs(audio.rms(out, PCM16_16K) - audio.rms(pcm, PCM16_16K)) < audio.rms(pcm, PCM16_16K) * 0.1


def test_it_converts_phone_audio_to_recogniser_audio_and_back():
    phone = audio.pcm16_to_mulaw(tone(500, 200, 8000))
    up = AudioConverter(MULAW_8K, PCM16_16K)
    pcm16k = b"".join(up.convert(frame) for frame in audio.split_frames(phone))
    assert abs(len(pcm16k) - 4 * len(phone)) <= 8
    back = audio.convert(pcm16k, PCM16_16K, MULAW_8K)
    assert abs(len(back) - len(phone)) <= 2
    assert abs(audio.rms(back, MULAW_8K) - audio.rms(phone, MULAW_8K)) < 500


def test_it_passes_equal_formats_through_untouched():
    converter = AudioConverter(MULAW_8K, MULAW_8K)
    assert converter.passthrough
    assert converter.convert(b"\x01\x02\x03") == b"\x01\x02\x03"


def test_it_splits_frames_and_pads_the_last_one_with_silence():
    frames = list(audio.split_frames(b"\x01" * 400))
    assert [len(f) for f in frames] == [160, 160, 160]
    assert frames[-1].endswith(b"\xff" * 80)
    assert [len(f) for f in audio.split_frames(b"\x01" * 400, pad=None)] == [160, 160, 80]


def test_it_buffers_arbitrary_chunks_into_frames():
    buf = FrameBuffer(160)
    assert buf.push(b"\x01" * 100) == []
    frames = buf.push(b"\x02" * 300)
    assert [len(f) for f in frames] == [160, 160]
    assert frames[0] == b"\x01" * 100 + b"\x02" * 60
    assert len(buf) == 80
    assert buf.flush(pad=b"\xff") == b"\x02" * 80 + b"\xff" * 80
    assert buf.flush() is None


def test_it_base64_encodes_a_twilio_frame_in_216_characters():
    payload = audio.b64encode_audio(audio.silence(20))
    assert len(payload) == 216
    assert audio.b64decode_audio(payload) == b"\xff" * 160


def test_it_measures_energy_in_dbfs():
    loud = tone(440, 100, 16000, amplitude=32000)
    assert -4 < audio.dbfs(loud, PCM16_16K) < -2
    assert audio.dbfs(b"\x00" * 320, PCM16_16K) == -math.inf
    assert not audio.is_silent(audio.pcm16_to_mulaw(tone(440, 20, 8000)), MULAW_8K)


def test_it_writes_and_reads_wav():
    pcm = tone(440, 100, 16000)
    data = audio.wav_bytes(pcm, 16000)
    assert audio.parse_wav(data) == (pcm, 16000)
    assert audio.read_wav(io.BytesIO(data)) == (pcm, 16000)


def test_it_reads_a_streamed_wav_with_a_placeholder_length(tmp_path):
    pcm = tone(440, 50, 22050)
    header = bytearray(audio.wav_bytes(b"", 22050))
    struct.pack_into("<I", header, 4, 0x7FFFF024)
    struct.pack_into("<I", header, 40, 0x7FFFF000)  # what espeak-ng --stdout writes
    path = tmp_path / "streamed.wav"
    path.write_bytes(bytes(header) + pcm)
    assert audio.read_wav(path) == (pcm, 22050)


def test_it_mixes_stereo_down_and_rejects_other_encodings():
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(struct.pack("<4h", 100, 300, -100, -300))
    assert audio.parse_wav(out.getvalue()) == (struct.pack("<2h", 200, -200), 8000)
    with pytest.raises(ValueError):
        audio.parse_wav(b"not a wav file at all")
