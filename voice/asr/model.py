"""The shop's language model: a Witten-Bell trigram ARPA file and a pronunciation dictionary, built from
the caller corpus and cached on disk under a hash of the vocabulary."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from functools import cache, lru_cache
from pathlib import Path

from voice.asr.vocabulary import MODEL_VERSION, ShopVocabulary, build_corpus

DEFAULT_CACHE_DIR = Path(os.environ.get("VOICE_ASR_CACHE_DIR", Path(tempfile.gettempdir()) / "voice-receptionist-asr"))


# -- language model -----------------------------------------------------------------------------


def train_arpa(sentences: Iterable[str], order: int = 3) -> str:
    """An ARPA back-off n-gram model with Witten-Bell smoothing, written out in full.

    Witten-Bell interpolates each order with the next lower one, weighting the lower order by how many
    different words followed the context: P(w|h) = (c(h,w) + T(h)·P_lower(w|h')) / (c(h) + T(h)). In
    back-off form the weight of an unseen continuation works out to exactly α(h) = T(h) / (c(h) + T(h))
    — no renormalisation sums needed.
    """
    counts: list[dict[tuple[str, ...], Counter[str]]] = [defaultdict(Counter) for _ in range(order)]
    for sentence in sentences:
        words = ["<s>", *sentence.split(), "</s>"]
        for i in range(1, len(words)):  # every word after <s> is predicted from up to order-1 before it
            for n in range(1, min(order, i + 1) + 1):
                counts[n - 1][tuple(words[i - n + 1 : i])][words[i]] += 1
    unigrams = counts[0][()]
    vocab = sorted(unigrams)  # every word but <s>
    total = sum(unigrams.values())
    types = len(vocab)

    def alpha(context: tuple[str, ...]) -> float:
        followers = counts[len(context)].get(context)
        if not followers:
            return 1.0
        seen = sum(followers.values())
        return len(followers) / (seen + len(followers))

    @cache
    def prob(word: str, context: tuple[str, ...]) -> float:
        if not context:
            return (unigrams[word] + 1) / (total + types)  # Witten-Bell over a uniform base: every word seen
        lower = prob(word, context[1:])
        followers = counts[len(context)].get(context)
        if not followers:
            return lower
        seen = sum(followers.values())
        t = len(followers)
        if word in followers:
            return (followers[word] + t * lower) / (seen + t)
        return alpha(context) * lower

    def log10(p: float) -> str:
        return f"{math.log10(p):.6f}"

    sections: list[list[str]] = [[] for _ in range(order)]
    sections[0].append(f"-99.000000\t<s>\t{log10(alpha(('<s>',)))}")
    for word in vocab:
        line = f"{log10(prob(word, ()))}\t{word}"
        if order > 1 and (word,) in counts[1]:
            line += f"\t{log10(alpha((word,)))}"
        sections[0].append(line)
    for n in range(2, order + 1):
        for context in sorted(counts[n - 1]):
            for word in sorted(counts[n - 1][context]):
                gram = (*context, word)
                line = f"{log10(prob(word, context))}\t{' '.join(gram)}"
                if n < order and gram in counts[n]:
                    line += f"\t{log10(alpha(gram))}"
                sections[n - 1].append(line)
    out = ["\\data\\"] + [f"ngram {n + 1}={len(lines)}" for n, lines in enumerate(sections)] + [""]
    for n, lines in enumerate(sections):
        out += [f"\\{n + 1}-grams:", *lines, ""]
    out.append("\\end\\")
    return "\n".join(out) + "\n"


# -- pronunciations -----------------------------------------------------------------------------

_IPA_TO_ARPABET = {
    "ə": "AH", "ʌ": "AH", "ɐ": "AH", "æ": "AE", "a": "AE", "ɑ": "AA", "ɒ": "AA", "ɔ": "AO", "aʊ": "AW",
    "aɪ": "AY", "ɛ": "EH", "e": "EH", "eɪ": "EY", "ɜ": "ER", "ɚ": "ER", "ɝ": "ER", "ɪ": "IH", "ᵻ": "IH",
    "i": "IY", "oʊ": "OW", "o": "OW", "əʊ": "OW", "ɔɪ": "OY", "ʊ": "UH", "u": "UW", "b": "B", "d": "D",
    "f": "F", "ɡ": "G", "g": "G", "h": "HH", "j": "Y", "k": "K", "l": "L", "m": "M", "n": "N", "ŋ": "NG",
    "p": "P", "ɹ": "R", "r": "R", "s": "S", "ʃ": "SH", "t": "T", "θ": "TH", "ð": "DH", "v": "V", "w": "W",
    "z": "Z", "ʒ": "ZH", "tʃ": "CH", "dʒ": "JH", "ɾ": "T", "ʔ": "T", "x": "K", "ɬ": "L", "ç": "HH",
}  # fmt: skip


def _ipa_phone(token: str) -> list[str]:
    token = token.replace("ˈ", "").replace("ˌ", "").replace("ː", "").replace("̩", "")
    if not token:
        return []
    if token in _IPA_TO_ARPABET:
        return [_IPA_TO_ARPABET[token]]
    if token.endswith(("ɹ", "r")) and token[:-1] in _IPA_TO_ARPABET:
        return [_IPA_TO_ARPABET[token[:-1]], "R"]
    return [_IPA_TO_ARPABET[ch] for ch in token if ch in _IPA_TO_ARPABET]


def espeak_pronunciations(words: Sequence[str]) -> dict[str, str]:
    """ARPAbet pronunciations from espeak-ng's own letter-to-sound rules (IPA, mapped to CMU phones).
    Empty when espeak-ng is not installed."""
    binary = shutil.which("espeak-ng")
    if binary is None or not words:
        return {}
    text = "\n".join(words)
    done = subprocess.run(  # noqa: S603
        [binary, "-q", "--ipa", "--sep=_", "-v", "en-us"], input=text.encode(), capture_output=True, check=False
    )
    lines = [line.strip() for line in done.stdout.decode().splitlines() if line.strip()]
    if done.returncode != 0 or len(lines) != len(words):
        return {}
    result = {}
    for word, line in zip(words, lines, strict=True):
        phones = [p for token in re.split(r"[_\s]+", line) for p in _ipa_phone(token)]
        if phones:
            result[word] = " ".join(phones)
    return result


_LETTER_RULES = [
    ("tch", "CH"), ("sch", "S K"), ("ch", "CH"), ("sh", "SH"), ("th", "TH"), ("ph", "F"), ("ck", "K"),
    ("ng", "NG"), ("qu", "K W"), ("wh", "W"), ("gh", ""), ("ee", "IY"), ("ea", "IY"), ("oo", "UW"),
    ("ou", "AW"), ("ow", "OW"), ("oa", "OW"), ("ai", "EY"), ("ay", "EY"), ("ei", "EY"), ("ie", "IY"),
    ("au", "AO"), ("aw", "AO"), ("oi", "OY"), ("oy", "OY"), ("er", "ER"), ("ir", "ER"), ("ur", "ER"),
    ("ar", "AA R"), ("or", "AO R"), ("a", "AE"), ("e", "EH"), ("i", "IH"), ("o", "AA"), ("u", "AH"),
    ("b", "B"), ("d", "D"), ("f", "F"), ("g", "G"), ("h", "HH"), ("j", "JH"), ("k", "K"), ("l", "L"),
    ("m", "M"), ("n", "N"), ("p", "P"), ("r", "R"), ("s", "S"), ("t", "T"), ("v", "V"), ("w", "W"),
    ("x", "K S"), ("z", "Z"),
]  # fmt: skip


def letter_pronunciation(word: str) -> str:
    """A crude letter-to-sound guess, used only when espeak-ng is missing: better than dropping the word."""
    word = word.lower().replace("'", "")
    if len(word) > 3 and word.endswith("e") and word[-2] not in "aeiou":
        word = word[:-1]  # silent final e
    phones: list[str] = []
    i = 0
    while i < len(word):
        ch = word[i]
        if ch == "c":
            phones.append("S" if word[i + 1 : i + 2] in ("e", "i", "y") else "K")
            i += 1
            continue
        if ch == "y":
            phones.append("Y" if i == 0 else "IY")
            i += 1
            continue
        for letters, sound in _LETTER_RULES:
            if word.startswith(letters, i):
                phones.extend(sound.split())
                i += len(letters)
                break
        else:
            i += 1
    # collapse doubled consonants ("ll" → L)
    collapsed = [p for j, p in enumerate(phones) if j == 0 or p != phones[j - 1]]
    return " ".join(collapsed)


@lru_cache(maxsize=1)
def _cmudict() -> dict[str, list[str]]:
    from pocketsphinx import get_model_path

    entries: dict[str, list[str]] = defaultdict(list)
    with open(get_model_path("en-us/cmudict-en-us.dict"), encoding="utf-8") as fh:
        for line in fh:
            word, _, phones = line.strip().partition(" ")
            entries[re.sub(r"\(\d+\)$", "", word)].append(phones.strip())
    return dict(entries)


def pronunciations(words: Iterable[str]) -> tuple[dict[str, list[str]], dict[str, str]]:
    """CMUdict pronunciations for `words`; words it lacks get espeak-ng's (or, without espeak-ng, the
    letter rules'). Returns (dictionary, {word: source} for the words that were guessed)."""
    cmu = _cmudict()
    found: dict[str, list[str]] = {}
    missing = []
    for word in sorted(set(words)):
        if word in cmu:
            found[word] = cmu[word]
        else:
            missing.append(word)
    guessed: dict[str, str] = {}
    for word, phones in espeak_pronunciations(missing).items():
        found[word] = [phones]
        guessed[word] = "espeak-ng"
    for word in missing:
        if word not in found and (phones := letter_pronunciation(word)):
            found[word] = [phones]
            guessed[word] = "letter rules"
    return found, guessed


# -- building and caching the shop's model ------------------------------------------------------

_build_lock = threading.Lock()


def build_domain_model(vocabulary: ShopVocabulary, cache_dir: Path | str | None = None) -> Path:
    """Build (or find in the cache) the shop's language model; returns the model directory holding
    `domain.lm` (ARPA trigram), `domain.dict` and `manifest.json`. The directory name is a hash of the
    vocabulary, so changed shop data gives a new model and unchanged data costs a stat call."""
    root = Path(cache_dir or DEFAULT_CACHE_DIR)
    target = root / f"shop-{vocabulary.digest()}"
    if (target / "manifest.json").exists():
        return target
    with _build_lock:
        if (target / "manifest.json").exists():
            return target
        started = time.perf_counter()
        corpus = build_corpus(vocabulary)
        arpa = train_arpa(corpus)
        words = {w for sentence in corpus for w in sentence.split()}
        pron, guessed = pronunciations(words)
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=root))
        (tmp / "domain.lm").write_text(arpa, encoding="utf-8")
        with open(tmp / "domain.dict", "w", encoding="utf-8") as fh:
            for word in sorted(pron):
                for i, phones in enumerate(pron[word]):
                    fh.write(f"{word if i == 0 else f'{word}({i + 1})'} {phones}\n")
        manifest = {
            "version": MODEL_VERSION,
            "digest": vocabulary.digest(),
            "sentences": len(corpus),
            "words": len(words),
            "guessed_pronunciations": guessed,
            "build_seconds": round(time.perf_counter() - started, 3),
        }
        # The manifest is written last: its presence means the model is complete.
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        try:
            tmp.rename(target)
        except OSError:  # another process built it first
            shutil.rmtree(tmp, ignore_errors=True)
        return target
