"""Benchmark: offline recognition (voice.asr) and synthesis (voice.tts) on synthetic caller speech.

    .venv/bin/python bench/asr_eval.py [--phrases voice/tests/data/asr_phrases.json] [--limit N]

For every caller phrase in the phrase file and every espeak-ng voice listed there:
  text → espeak-ng (22.05 kHz) → PCM16 16 kHz → the phone path (16 kHz → 8 kHz → μ-law → 8 kHz → 16 kHz,
  what our side hears from Twilio) → PocketSphinx with (a) the bundled general English LM and (b) the
  shop's domain LM built by `voice.asr.build_domain_model` from the vocabulary in the phrase file.
Reports word error rate (all phrases, and split into phrases that follow the LM's sentence patterns vs
paraphrases), sentence accuracy, closed-set accuracy (yes/no/…), the real-time factor, decoder init time
and resident memory (each measured in a fresh child process), model build time, and TTS synthesis time and
time to first audio. Prints one JSON line. `rtf` is wall-clock decode time / audio time, `rtf_cpu` the
decoding thread's CPU time / audio time (the figure to trust on a busy machine).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import django

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# The offline brain (intent after recognition) reads Django models' modules; no database is used.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "receptionist.settings")
os.environ.setdefault("DEBUG", "1")
django.setup()

from voice.asr import Recognizer, ShopVocabulary, build_domain_model, normalize_text  # noqa: E402
from voice.audio import MULAW_8K, PCM16_16K  # noqa: E402
from voice.nlu.understand import understand  # noqa: E402
from voice.nlu.vocab import ShopVocabulary as NluVocabulary  # noqa: E402
from voice.testing.speech import through_phone  # noqa: E402
from voice.tts import Synthesizer, TTSVoice  # noqa: E402

TYPICAL_REPLY = "Good news, your 2018 Honda Civic is ready for pickup. We're open until six tonight."  # 15 words
LONG_REPLY = (
    "Thanks for calling Demo Auto Repair. I found your work order for the Subaru Outback, and it is "
    "waiting on parts right now. The technician expects them tomorrow morning, and we will call you as "
    "soon as the car is ready. Is there anything else I can help you with today?"
)


def word_errors(reference: list[str], hypothesis: list[str]) -> int:
    """Levenshtein distance over words (substitutions + deletions + insertions)."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        current = [i]
        for j, hyp in enumerate(hypothesis, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref != hyp)))
        previous = current
    return previous[-1]


def rss_child(model: str | None) -> dict[str, float]:
    """Decoder init time and resident memory added, in a fresh interpreter."""
    code = f"""
import json, time
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
import pocketsphinx
from voice.asr import Recognizer
before = rss()
r = Recognizer({model!r})
print(json.dumps({{"init_s": r.init_seconds, "rss_mb": rss() - before}}))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)  # noqa: S603
    return json.loads(out.stdout.strip().splitlines()[-1])


def evaluate(recognizer: Recognizer, samples: list[dict], nlu_vocab: NluVocabulary) -> dict:
    """WER and speed; and whether the offline brain reads the same intent from what was recognised
    as from the words actually said (the intent accuracy after recognition)."""
    errors = words = exact = same_intent = 0
    by_kind: dict[str, list[int]] = {}
    decode_s = audio_s = cpu_s = 0.0
    per_utt_rtf = []
    for sample in samples:
        cpu_started = time.thread_time()
        result = recognizer.decode(sample["pcm"])
        cpu_s += time.thread_time() - cpu_started
        ref = sample["reference"]
        hyp = result.words
        e = word_errors(ref, hyp)
        errors += e
        words += len(ref)
        exact += e == 0
        kind = by_kind.setdefault(sample["kind"], [0, 0])
        kind[0] += e
        kind[1] += len(ref)
        decode_s += result.decode_seconds
        audio_s += result.audio_seconds
        per_utt_rtf.append(result.real_time_factor)
        sample.setdefault("hyps", []).append(result.text)
        said = understand(sample["text"], nlu_vocab).intent
        same_intent += understand(result.text, nlu_vocab).intent == said
    return {
        "wer": round(errors / words, 3),
        "wer_by_kind": {k: round(v[0] / v[1], 3) for k, v in sorted(by_kind.items())},
        "sentence_accuracy": round(exact / len(samples), 3),
        "intent_accuracy_after_recognition": round(same_intent / len(samples), 3),
        "rtf": round(decode_s / audio_s, 3),
        "rtf_cpu": round(cpu_s / audio_s, 3),  # CPU time: unaffected by other work on a shared machine
        "rtf_p95": round(sorted(per_utt_rtf)[int(0.95 * (len(per_utt_rtf) - 1))], 3),
    }


async def tts_numbers() -> dict:
    synth = Synthesizer(cache_size=0)
    await synth.synthesize("warm up", MULAW_8K)
    full, first, long_full = [], [], []
    for _ in range(15):
        started = time.perf_counter()
        audio = await synth.synthesize(TYPICAL_REPLY, MULAW_8K)
        full.append(time.perf_counter() - started)
        started = time.perf_counter()
        await synth.synthesize(LONG_REPLY, MULAW_8K)
        long_full.append(time.perf_counter() - started)
        started = time.perf_counter()
        stream = synth.stream(LONG_REPLY, MULAW_8K)
        await anext(stream)
        first.append(time.perf_counter() - started)
        await stream.aclose()
    cached = Synthesizer()
    await cached.synthesize(TYPICAL_REPLY, MULAW_8K)
    started = time.perf_counter()
    await cached.synthesize(TYPICAL_REPLY, MULAW_8K)
    hit = time.perf_counter() - started
    return {
        "typical_reply_words": len(TYPICAL_REPLY.split()),
        "typical_reply_audio_s": round(MULAW_8K.duration_ms(len(audio)) / 1000, 2),
        "typical_reply_synth_ms": round(statistics.median(full) * 1000, 1),
        "long_reply_words": len(LONG_REPLY.split()),
        "long_reply_synth_ms": round(statistics.median(long_full) * 1000, 1),
        "long_reply_first_audio_ms": round(statistics.median(first) * 1000, 1),
        "cache_hit_ms": round(hit * 1000, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phrases", type=Path, default=ROOT / "voice/tests/data/asr_phrases.json")
    parser.add_argument("--limit", type=int, default=0, help="only the first N phrases (quick runs)")
    parser.add_argument("--verbose", action="store_true", help="print each phrase's hypotheses to stderr")
    args = parser.parse_args()

    data = json.loads(args.phrases.read_text())
    vocab = data["vocabulary"]
    vocabulary = ShopVocabulary(
        shop_name=vocab["shop_name"],
        customer_names=tuple(vocab["customer_names"]),
        vehicles=tuple(tuple(v) for v in vocab["vehicles"]),
        ro_numbers=tuple(vocab["ro_numbers"]),
        services=tuple(vocab["services"]),
    )
    phrases = data["phrases"][: args.limit or None]
    voices = [TTSVoice(name, rate=rate) for name, rate in data["voices"]]

    with tempfile.TemporaryDirectory() as cache:
        started = time.perf_counter()
        model = build_domain_model(vocabulary, cache)
        build_s = time.perf_counter() - started
        manifest = json.loads((model / "manifest.json").read_text())

        synth = Synthesizer(cache_size=0)
        samples = []
        for phrase in phrases:
            for voice in voices:
                pcm = synth.synthesize_blocking(phrase["text"], PCM16_16K, voice=voice)
                samples.append(
                    {
                        "text": phrase["text"],
                        "kind": phrase["kind"],
                        "voice": f"{voice.name}@{voice.rate}",
                        "reference": normalize_text(phrase["text"]),
                        "pcm": through_phone(pcm, 16000),
                    }
                )

        default = Recognizer(None)
        domain = Recognizer(model)
        nlu_vocab = NluVocabulary.build(
            [(name.split()[-1].lower(), "", "") for name in vocab["customer_names"]]
            + [("", make, model) for make, model in vocab["vehicles"]]
        )
        results = {
            "default_lm": evaluate(default, samples, nlu_vocab),
            "domain_lm": evaluate(domain, samples, nlu_vocab),
        }

        choices = data["closed_set"]
        right = total = 0
        for word in choices:
            for voice in voices:
                pcm = through_phone(synth.synthesize_blocking(word, PCM16_16K, voice=voice), 16000)
                right += domain.decode(pcm, choices=choices).text == " ".join(normalize_text(word))
                total += 1
        results["domain_lm"]["closed_set_accuracy"] = round(right / total, 3)

        memory = {"default_lm": rss_child(None), "domain_lm": rss_child(str(model))}
        for key, value in memory.items():
            results[key]["decoder_init_s"] = round(value["init_s"], 3)
            results[key]["decoder_rss_mb"] = round(value["rss_mb"], 1)

    if args.verbose:
        for sample in samples:
            print(f"{sample['voice']:>14} | {sample['text']}\n{'':>14} | default: {sample['hyps'][0]}"
                  f"\n{'':>14} | domain:  {sample['hyps'][1]}", file=sys.stderr)  # fmt: skip

    print(
        json.dumps(
            {
                "bench": "asr_eval",
                "python": platform.python_version(),
                "cpus": len(__import__("os").sched_getaffinity(0)),
                "phrases": len(phrases),
                "voices": [f"{v.name}@{v.rate}wpm" for v in voices],
                "utterances": len(samples),
                "audio_s": round(sum(len(s["pcm"]) for s in samples) / 32000, 1),
                "path": "espeak-ng 22.05k -> 16k -> 8k mu-law -> 16k",
                "domain_model": {
                    "build_s": round(build_s, 3),
                    "sentences": manifest["sentences"],
                    "words": manifest["words"],
                    "guessed_pronunciations": len(manifest["guessed_pronunciations"]),
                },
                **results,
                "tts": asyncio.run(tts_numbers()),
            }
        )
    )


if __name__ == "__main__":
    main()
