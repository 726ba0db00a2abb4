"""Numbers as callers say them: "one oh two three four" → 10234, "ten oh one" → 1001,
"f one fifty" → f 150, "twelve hundred" → 1200, "one thousand and one" → 1001, "double five" → 55.

People read reference numbers in chunks, so chunks are *concatenated* ("twenty twenty" → 2020), while
"hundred" and "thousand" multiply as in ordinary counting.
"""

from __future__ import annotations

UNITS = {
    "zero": 0,
    "oh": 0,
    "o": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
}
# Recognisers write homophones of digits: "won", "to/too", "for", "ate".
_SOUNDALIKES = {"won": "one", "too": "two", "to": "two", "for": "four", "fore": "four", "ate": "eight", "nein": "nine"}
TEENS = {
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
}
TENS = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fourty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
REPEATS = {"double": 2, "triple": 3}
NUMBER_WORDS = frozenset(UNITS) | frozenset(TEENS) | frozenset(TENS) | {"hundred", "thousand"}


def _is_numberish(token: str) -> bool:
    return token.isdigit() or token in NUMBER_WORDS or token in REPEATS


def _small(tokens: list[str], i: int) -> tuple[int, int] | None:
    """A number below 100 starting at tokens[i]: (value, tokens used)."""
    t = tokens[i]
    if t in TENS:
        if i + 1 < len(tokens) and tokens[i + 1] in UNITS and UNITS[tokens[i + 1]] > 0 and tokens[i + 1] != "o":
            return TENS[t] + UNITS[tokens[i + 1]], 2
        return TENS[t], 1
    if t in TEENS:
        return TEENS[t], 1
    if t in UNITS:
        return UNITS[t], 1
    return None


def _chunk(tokens: list[str], i: int) -> tuple[str, int]:
    """One spoken chunk at tokens[i] as digits, and how many tokens it used (0 if none)."""
    t = tokens[i]
    if t.isdigit():
        return t, 1
    if t in REPEATS and i + 1 < len(tokens):
        nxt = tokens[i + 1]
        if nxt in UNITS or nxt.isdigit() and len(nxt) == 1:
            digit = str(UNITS[nxt]) if nxt in UNITS else nxt
            return digit * REPEATS[t], 2
    small = _small(tokens, i)
    if small is None:
        return "", 0
    value, used = small
    j = i + used
    if j < len(tokens) and tokens[j] == "hundred" and value > 0:
        value *= 100
        j += 1
        if j + 1 < len(tokens) and tokens[j] == "and" and _small(tokens, j + 1):
            j += 1
        rest = _small(tokens, j) if j < len(tokens) else None
        if rest and tokens[j] not in ("oh", "o"):
            value += rest[0]
            j += rest[1]
    if j < len(tokens) and tokens[j] == "thousand" and value > 0:
        value *= 1000
        j += 1
        if j + 1 < len(tokens) and tokens[j] == "and" and _small(tokens, j + 1):
            j += 1
        if j < len(tokens) and tokens[j] not in ("oh", "o") and (rest_chunk := _chunk(tokens, j))[1]:
            digits, used2 = rest_chunk
            if len(digits) <= 3:
                value += int(digits)
                j += used2
    return str(value), j - i


def digits_in(words: list[str]) -> list[str]:
    """The words with every run of spoken or written numbers replaced by one digit string.

    "oh"/"o" count as zero only next to another number ("oh, hi" stays words); a lone "to"/"for"
    stays a word, but inside a run of digits it is the digit it sounds like.
    """
    tokens = list(words)
    out: list[str] = []
    i = 0
    while i < len(tokens):
        run_end = i
        while run_end < len(tokens) and (
            _is_numberish(tokens[run_end])
            or (tokens[run_end] in _SOUNDALIKES and _run_neighbours(tokens, run_end))
            or (tokens[run_end] == "and" and run_end > i and _is_numberish_at(tokens, run_end + 1))
        ):
            run_end += 1
        if run_end == i:
            out.append(tokens[i])
            i += 1
            continue
        run = [_SOUNDALIKES.get(t, t) for t in tokens[i:run_end]]
        if len(run) == 1 and run[0] in ("oh", "o"):
            out.append(tokens[i])
            i += 1
            continue
        out.extend(_convert_run(run))
        i = run_end
    return out


def _is_numberish_at(tokens: list[str], k: int) -> bool:
    return k < len(tokens) and _is_numberish(tokens[k])


def _run_neighbours(tokens: list[str], k: int) -> bool:
    """A soundalike ("to", "for") is a digit only between two number words."""
    before = k > 0 and (_is_numberish(tokens[k - 1]) and tokens[k - 1] not in ("hundred", "thousand"))
    after = k + 1 < len(tokens) and _is_numberish(tokens[k + 1])
    return before and after


def _convert_run(run: list[str]) -> list[str]:
    digits = ""
    j = 0
    leftovers: list[str] = []
    while j < len(run):
        if run[j] == "and":
            j += 1
            continue
        chunk, used = _chunk(run, j)
        if not used:
            leftovers.append(run[j])
            j += 1
            continue
        digits += chunk
        j += used
    return [digits, *leftovers] if digits else leftovers
