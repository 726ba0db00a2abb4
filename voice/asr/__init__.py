"""Offline speech recognition with PocketSphinx 5, biased towards what callers say to a repair shop.

Pieces, in the order a call uses them:

* `UtteranceDetector` — PocketSphinx's `Endpointer` (WebRTC-style VAD) over PCM16 16 kHz: tells when the
  caller starts talking (for barge-in) and hands over each finished utterance.
* `Recognizer` — one PocketSphinx decoder; `decode()` turns an utterance into text, `choices=` restricts it
  to a closed set (yes/no…). Decoders are big (~0.3 s and ~100 MB with the bundled LM), so
  `get_recognizer()` shares one per model per process.
* `build_domain_model(ShopVocabulary)` — a trigram ARPA language model and a pronunciation dictionary
  built from typical caller sentences plus the shop's own names, vehicles and RO numbers; cached on disk
  under a hash of the vocabulary, so it is rebuilt only when the shop's data changes.

Phone audio is μ-law 8 kHz; the bundled acoustic model needs 16 kHz (it refuses samprate=8000):
`UtteranceDetector(input_format=MULAW_8K)` converts as it goes and hands out 16 kHz utterances.

Modules: `vocabulary` (what callers say, text normalisation), `model` (language model and pronunciations),
`recognizer` (decoders and endpointing).
"""

from voice.asr.model import (
    DEFAULT_CACHE_DIR,
    build_domain_model,
    espeak_pronunciations,
    letter_pronunciation,
    pronunciations,
    train_arpa,
)
from voice.asr.recognizer import (
    SAMPLE_RATE,
    Recognizer,
    RecognizerPool,
    SpeechStarted,
    Transcript,
    Utterance,
    UtteranceDetector,
    get_recognizer,
    pool,
)
from voice.asr.vocabulary import (
    CALLER_TEMPLATES,
    MODEL_VERSION,
    ShopVocabulary,
    build_corpus,
    digits_words,
    normalize_text,
    number_words,
)

__all__ = [
    "CALLER_TEMPLATES",
    "DEFAULT_CACHE_DIR",
    "MODEL_VERSION",
    "SAMPLE_RATE",
    "Recognizer",
    "RecognizerPool",
    "ShopVocabulary",
    "SpeechStarted",
    "Transcript",
    "Utterance",
    "UtteranceDetector",
    "build_corpus",
    "build_domain_model",
    "digits_words",
    "espeak_pronunciations",
    "get_recognizer",
    "letter_pronunciation",
    "normalize_text",
    "number_words",
    "pool",
    "pronunciations",
    "train_arpa",
]
