"""Built-in verifiers: score an answer text against a task's ``expected_answer``; reward 1.0 or 0.0.

- ``math``: ``math_verify.parse`` both sides, ``math_verify.verify(gold, prediction)`` (so ``1/2`` equals
  ``0.5`` and ``\\frac{1}{2}``); the gold is parsed as given, then as ``\\boxed{...}`` if that yields nothing.
- ``choice``: a multiple-choice letter A-J, from the first pattern that matches, last match wins:
  ``\\boxed{C}``; ``Answer: C`` / ``answer is (C)``; ``(C)``; the last standalone capital letter that is
  not used as a word (``I think``, ``A cat``: a letter followed by a lower-case word is a word).
- ``exact``: the final answer (last ``\\boxed{...}``, else the text after the last ``answer:``, else the
  last non-empty line) equals the expected answer after normalisation (case, spaces, ``$``, ``\\text{}``,
  a trailing period).
- ``none``: no scoring (the rollout is written with reward 0.0; score it later).

Each verdict records ``extracted_answer`` (None when nothing was found) and ``is_correct``.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

from rollforge.errors import missing_extra

VERIFIERS = ("exact", "math", "choice", "none")
MATH_TIMEOUT_S = 10  # per parse / comparison, as NeMo Gym's math_with_judge (SymPy can take seconds)

_BOXED_LETTER = re.compile(r"\\boxed\{\s*(?:\\text\{\s*)?\(?\s*([A-J])\s*\)?\s*\}?\s*\}")
_ANSWER_LETTER = re.compile(
    r"(?:[Aa]nswer|ANSWER)(?:\s+(?:is|IS))?\s*[:：=]?\s*[*_]*\s*(?:\\boxed\{)?\(?([A-J])\)?(?![A-Za-z0-9'])"
)
_PAREN_LETTER = re.compile(r"\(([A-J])\)")
_LONE_LETTER = re.compile(r"(?<![A-Za-z0-9'\\])([A-J])(?![A-Za-z0-9'])(?!\s+[a-z])")
_ANSWER_LINE = re.compile(r"(?i)answer(?:\s+is)?\s*[:：]\s*(.+)")
_TEXT_WRAP = re.compile(r"\\text\{\s*(.*?)\s*\}", re.S)


@dataclass(frozen=True, slots=True)
class Verdict:
    is_correct: bool
    extracted_answer: str | None

    @property
    def reward(self) -> float:
        return 1.0 if self.is_correct else 0.0

    def fields(self) -> dict[str, Any]:
        """The fields a verdict adds to a rollout line."""
        return {
            "reward": self.reward,
            "is_correct": self.is_correct,
            "extracted_answer": self.extracted_answer,
        }


def verify(kind: str, text: str, expected: Any) -> Verdict | None:
    """Score ``text`` against ``expected`` with the named verifier; None for ``none``."""
    if kind == "none":
        return None
    expected_text = "" if expected is None else str(expected)
    if kind == "math":
        return verify_math(text, expected_text)
    if kind == "choice":
        return verify_choice(text, expected_text)
    if kind == "exact":
        return verify_exact(text, expected_text)
    raise ValueError(f"unknown verifier {kind!r}; one of {', '.join(VERIFIERS)}")


def last_boxed(text: str) -> str | None:
    """The contents of the last complete ``\\boxed{...}`` (nested braces balanced)."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, begin = 1, start + len("\\boxed{")
    for i in range(begin, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[begin:i]
    return None


def extract_choice(text: str) -> str | None:
    """The multiple-choice letter A-J a text answers with (see the module docstring), or None."""
    for pattern in (_BOXED_LETTER, _ANSWER_LETTER, _PAREN_LETTER, _LONE_LETTER):
        found = pattern.findall(text)
        if found:
            return str(found[-1])
    return None


def verify_choice(text: str, expected: str) -> Verdict:
    gold = expected.strip().strip("()").strip().upper()
    if len(gold) != 1:
        gold = extract_choice(expected) or gold
    letter = extract_choice(text)
    return Verdict(letter is not None and letter == gold, letter)


def final_answer(text: str) -> str | None:
    """The final answer of a free-text reply: last boxed, else after the last 'answer:', else last line."""
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed.strip()
    found = _ANSWER_LINE.findall(text)
    if found:
        return str(found[-1]).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else None


def normalize(answer: str) -> str:
    """Case-folded, spaces collapsed; surrounding ``$``, ``**``, quotes, ``\\text{}``, final period cut."""
    s = answer.strip()
    while True:
        before = s
        s = s.strip().strip("$").strip("*").strip("`").strip("\"'").strip()
        wrapped = _TEXT_WRAP.fullmatch(s)
        s = wrapped.group(1) if wrapped else s
        s = s[:-1] if s.endswith(".") else s
        if s == before:
            break
    return " ".join(s.casefold().split())


def verify_exact(text: str, expected: str) -> Verdict:
    answer = final_answer(text)
    return Verdict(answer is not None and normalize(answer) == normalize(expected), answer)


def verify_math(text: str, expected: str) -> Verdict:
    try:
        from math_verify import parse
        from math_verify import verify as math_equal
    except ImportError:
        raise missing_extra("math-verify", "eval") from None
    # math_verify's timeouts use SIGALRM, which only the main thread may set; elsewhere run without them
    # (collect runs this in a worker process's main thread, where they work).
    main = threading.current_thread() is threading.main_thread()
    limit: Any = MATH_TIMEOUT_S if main else None  # math_verify annotates int but takes None (no timeout)
    gold = parse(expected, parsing_timeout=limit)
    if not gold:  # a bare answer math_verify cannot read as an expression may still read as LaTeX
        gold = parse(f"\\boxed{{{expected.strip().strip('$')}}}", parsing_timeout=limit)
    prediction = parse(text, parsing_timeout=limit)
    if not prediction:
        return Verdict(False, None)
    extracted = str(prediction[-1] if len(prediction) > 1 else prediction[0])
    if not gold:
        return Verdict(False, extracted)
    return Verdict(bool(math_equal(gold, prediction, timeout_seconds=limit)), extracted)
