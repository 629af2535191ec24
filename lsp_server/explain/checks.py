"""Checks of a model's explanation and fix before a user reads them (also run by
bench/explain.py on every answer): a self-contradiction, a denial of a known fact, repetition,
text too short to say anything, prose that only restates the error message, and a "fix" that
only renames identifiers or equals the line. A failed check means the explanation built from the
facts is shown instead, or the fix is not offered.
"""

from __future__ import annotations

import io
import keyword
import re
import tokenize

MIN_WORDS = 5
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"[A-Za-z_][A-Za-z_0-9]*|\d+")
_QUOTED = r"[`'\"]([^`'\"]{1,60})[`'\"]"
_EXPECTED_SAME = re.compile(
    rf"(?:did not|didn't|does not|doesn't|not) expect(?:ed)?\s+{_QUOTED}.{{0,80}}?"
    rf"expected\s+{_QUOTED}",
    re.I | re.S,
)
_SAME_AS = re.compile(rf"{_QUOTED}\s+(?:instead of|rather than|should be|→|->)\s+{_QUOTED}", re.I)
# Words that say nothing beyond the message: "The error occurs because of a division by zero."
_FILLER = frozenset(
    re.findall(
        r"\w+",
        "a an the this that it its is are was were be been being error errors exception raised "
        "raise raises occurs occurred occur happens happened because of in on at to by for from "
        "with code line function program python there here when which so and or not no cause "
        "caused causes due fails failed failing failure problem issue",
    )
)
# Ways of denying that an expression had a value a fact states.
_DENIALS = ("is not", "isn't", "was not", "wasn't", "cannot be", "can't be", "never", "not")


def _norm(text: str) -> str:
    return " ".join(text.lower().split()).strip(" .`'\"")


def contradiction(text: str, claims: list[tuple[str, str]] = ()) -> str | None:  # type: ignore[assignment]
    """A sentence saying X was unexpected where X was expected, a swap of X for itself, or a
    denial of a fact (`len(values)` "is not 0" when the divisor was 0); None when there is
    none."""
    for pattern in (_EXPECTED_SAME, _SAME_AS):
        for found in pattern.finditer(text):
            if _norm(found.group(1)) == _norm(found.group(2)):
                return f"says `{found.group(1).strip()}` is both wrong and right"
    for subject, value in claims:
        if _denies(text, subject, value):
            return f"denies a fact: `{subject}` was {value}"
    return None


def _denies(text: str, subject: str, value: str) -> bool:
    words = {"0": ("0", "zero"), "empty": ("empty",), "None": ("none",)}.get(value, (value,))
    lowered = text.lower()
    subject = subject.lower()
    for sentence in _SENTENCE.split(lowered):
        at = sentence.find(subject)
        if at < 0:
            continue
        rest = sentence[at + len(subject) : at + len(subject) + 40]
        for denial in _DENIALS:
            for word in words:
                if re.search(rf"\b{re.escape(denial)}\s+(?:be\s+)?{re.escape(word)}\b", rest):
                    return True
    return False


def repetition(text: str) -> str | None:
    """Repeated sentences, a phrase of 4+ words said three times, a word repeated in a row;
    code in backticks (`[1,1,1,1]`) does not count."""
    sentences = [_norm(s) for s in _SENTENCE.split(text) if len(_norm(s).split()) >= 3]
    if len(sentences) != len(set(sentences)):
        return "repeats a sentence"
    words = [w.lower() for w in _WORD.findall(re.sub(r"`[^`]*`", " ", text))]
    for size in (4, 6, 8):
        grams = [tuple(words[i : i + size]) for i in range(len(words) - size + 1)]
        if grams and max(grams.count(g) for g in set(grams)) >= 3:
            return "repeats a phrase"
    for i in range(len(words) - 3):
        if len(set(words[i : i + 4])) == 1:
            return "repeats a word"
    return None


def empty(text: str) -> str | None:
    if len(_WORD.findall(text)) < MIN_WORDS or len(text.strip()) < 20:
        return "says (almost) nothing"
    return None


def restates(text: str, message: str) -> str | None:
    """Prose whose every word is in the error message or is filler: it explains nothing."""
    said = {w.lower() for w in _WORD.findall(message)}
    said |= {w.lower() for w in re.findall(r"[a-z]+", _split_camel(message).lower())}
    own = [w.lower() for w in _WORD.findall(text)]
    if own and all(w in said or w in _FILLER for w in own):
        return "only restates the error message"
    return None


def _split_camel(text: str) -> str:
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", text)


def explanation_problems(
    text: str,
    message: str,
    claims: list[tuple[str, str]] = (),  # type: ignore[assignment]
) -> list[str]:
    """Why an explanation must not be shown as it is (empty list: it passes)."""
    found = [empty(text)]
    if found[0] is None:
        found += [contradiction(text, claims), repetition(text), restates(text, message)]
    return [problem for problem in found if problem]


def _tokens(code: str) -> list[tuple[int, str]] | None:
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(code.strip() + "\n").readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return None
    skip = (tokenize.NEWLINE, tokenize.NL, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER)
    return [(t.type, t.string) for t in tokens if t.type not in skip and t.type != tokenize.COMMENT]


def _is_name(token: tuple[int, str]) -> bool:
    return token[0] == tokenize.NAME and not keyword.iskeyword(token[1])


def fix_problem(line: str, fix: str | None) -> str | None:
    """Why a fix must not be offered: it is the line as it is, or it only renames identifiers
    (the same tokens except names); None when it may be offered (it still has to parse)."""
    if fix is None:
        return None
    if "".join(fix.split()) == "".join(line.split()):
        return "the fix is the line as it is"
    if fix.strip().startswith("#") and not line.strip().startswith("#"):
        return "the fix is a comment"
    defines = re.compile(r"^\s*(?:async\s+)?(?:def|class)\s")
    if defines.match(fix) and not defines.match(line):
        return "the fix defines a function or class in place of another statement"
    old, new = _tokens(line), _tokens(fix)
    if old is None or new is None or len(old) != len(new):
        return None
    renamed = False
    for a, b in zip(old, new, strict=True):
        if a == b:
            continue
        if _is_name(a) and _is_name(b):
            renamed = True
            continue
        return None
    return "the fix only renames an identifier" if renamed else None
