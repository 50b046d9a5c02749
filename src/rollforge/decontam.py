"""Keep evaluation tasks out of training data: is a training prompt one of the evaluation tasks?

A training rollout is *contaminated* when its prompt matches an evaluation task:

- exactly: the same ``prompt_id`` (``rollforge.identity``: messages and tools, canonical), or
- by a long n-gram overlap of the user text (the decontamination rule of GPT-3 and its successors): the
  two share a run of ``n`` words (13 by default). Words are ``\\w+`` runs, case folded, so punctuation,
  spacing and case edits do not hide a copy, and one changed word leaves the n-grams before and after it.

Only what the user wrote is compared (user messages of the prompt; not system prompts, tools or the model's
answers). Two things keep shared instructions from making every prompt "contaminated": an n-gram found in
the user text of more than ``max(2, 1%)`` of the evaluation tasks is a template ("Solve the following math
problem. Make sure to put the answer ... inside \\boxed{}"), not a task, and is ignored; an evaluation text
shorter than ``n`` words ("Reverse: 4821") matches a training text equal to it word for word, never a
training text that merely contains it. With fewer than three evaluation tasks no n-gram can be told to be
a template.

The evaluation file is JSONL of task rows or rollouts: each line's ``responses_create_params`` is its
prompt (``rollforge collect`` sends exactly that), so a tasks file and the rollouts collected from it give
the same prompt ids. ``load_eval_tasks`` reads it once per process and file state.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import orjson
import xxhash

from rollforge.convert import convert_prompt
from rollforge.errors import RollforgeError
from rollforge.identity import prompt_id
from rollforge.schema import text

DEFAULT_NGRAM = 13
TEMPLATE_SHARE = 0.01  # an n-gram in more than this share of the evaluation tasks (and more than 2): template
_WORD = re.compile(r"\w+")
VERDICT_CACHE = 1 << 18  # prompts whose verdict a process remembers (some 30 MB at most)


def words(value: str) -> list[str]:
    """The words of a text, case folded: punctuation and spacing are not words."""
    return _WORD.findall(value.casefold())


def user_text(messages: Iterable[dict[str, Any]]) -> str:
    """What the user wrote in these messages, one message a line."""
    return "\n".join(text(m.get("content")) for m in messages if m.get("role") == "user")


def _hash(seq: list[str]) -> int:
    return xxhash.xxh3_64_intdigest(" ".join(seq).encode())


def ngrams(tokens: list[str], n: int) -> Iterator[int]:
    """The hashed n-grams of a word list (none when it is shorter than ``n``)."""
    for start in range(len(tokens) - n + 1):
        yield _hash(tokens[start : start + n])


@dataclass(frozen=True)
class EvalTasks:
    """An evaluation set, ready to match training prompts against."""

    path: str
    sha256: str  # of the file's bytes, for the manifest: which evaluation set was kept out
    n: int
    tasks: int  # distinct prompts
    prompt_ids: frozenset[str]
    grams: frozenset[int]  # n-grams of the evaluation user texts, templates left out
    short: frozenset[int]  # whole texts of fewer than n words (hashed word sequences)
    templates: int  # n-grams ignored as shared instructions
    # prompt_id -> verdict: a prompt's samples are judged once (the id is a hash of the whole prompt)
    verdicts: dict[str, str | None] = field(default_factory=dict, compare=False, repr=False)

    def match(self, pid: str, prompt: list[dict[str, Any]]) -> str | None:
        """How ``prompt`` (chat messages) with id ``pid`` matches an evaluation task: "prompt_id",
        "ngram" or None."""
        if pid in self.prompt_ids:
            return "prompt_id"
        if pid in self.verdicts:
            return self.verdicts[pid]
        verdict = self._overlap(prompt)
        if pid and len(self.verdicts) < VERDICT_CACHE:
            self.verdicts[pid] = verdict
        return verdict

    def _overlap(self, prompt: list[dict[str, Any]]) -> str | None:
        tokens = words(user_text(prompt))
        if len(tokens) < self.n:
            return "ngram" if tokens and _hash(tokens) in self.short else None
        return "ngram" if any(g in self.grams for g in ngrams(tokens, self.n)) else None

    def summary(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "sha256": self.sha256,
            "tasks": self.tasks,
            "ngram": self.n,
            "template_ngrams_ignored": self.templates,
        }


def task_prompt(row: Any, where: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The chat messages and tools of a task row or rollout (its ``responses_create_params``)."""
    params = row.get("responses_create_params") if isinstance(row, dict) else None
    if not isinstance(params, dict):
        raise RollforgeError(
            f"{where}: an evaluation task needs a responses_create_params object",
            hint="pass the held-out tasks file (NeMo Gym dataset JSONL) or rollouts collected on it",
        )
    try:
        return convert_prompt(params)
    except Exception as exc:  # msgspec validation or conversion: the row's own fault, said with its place
        raise RollforgeError(f"{where}: cannot read the task's prompt ({exc})") from None


def _rows(path: str, digest: Any) -> Iterator[tuple[Any, str]]:
    """The task rows of ``path``, each with its place; every byte read goes into ``digest``."""
    try:
        fh = open(path, "rb")  # noqa: SIM115 (closed below; the error path needs the name)
    except OSError as exc:
        raise RollforgeError(f"cannot read evaluation tasks {path}: {exc.strerror}") from None
    with fh:
        for line_no, line in enumerate(fh, start=1):
            digest.update(line)
            if line.strip():
                try:
                    yield orjson.loads(line), f"{path}:{line_no}"
                except orjson.JSONDecodeError as exc:
                    raise RollforgeError(f"{path}:{line_no}: not valid JSON ({exc})") from None


def _user_words(paths: list[str], digest: Any) -> Iterator[tuple[str, list[str]]]:
    """(prompt_id, words of the user text) of each distinct evaluation task in ``path``: a rollouts file
    repeats each task once per sample, which must not make its n-grams look shared by many tasks."""
    seen: set[str] = set()
    for row, where in (item for path in paths for item in _rows(path, digest)):
        messages, tools = task_prompt(row, where)
        pid = prompt_id(messages, tools)
        if pid not in seen:
            seen.add(pid)
            yield pid, words(user_text(messages))


def build_eval_tasks(path: str | list[str], n: int = DEFAULT_NGRAM) -> EvalTasks:
    """Read the evaluation tasks at ``path`` (JSONL of task rows or rollouts; or several such files) for
    matching at ``n`` words.

    Two passes over the file, so that no task's text is held: the first counts in how many tasks each
    n-gram occurs (more than ``max(2, 1%)``: a template); the second keeps each task's n-grams that are
    mostly its own words, leaving out those where the template reaches more than half the words (the
    instruction's tail plus a problem's first word, "... inside boxed{} Find", is shared, not content)."""
    if n < 1:
        raise RollforgeError("--contamination-ngram must be at least 1")
    paths = [path] if isinstance(path, str) else list(path)
    digest = hashlib.sha256()
    seen: Counter[int] = Counter()  # n-gram -> evaluation tasks whose user text holds it
    ids: set[str] = set()
    short: set[int] = set()
    tasks = 0
    for pid, tokens in _user_words(paths, digest):
        tasks += 1
        ids.add(pid)
        if len(tokens) < n:
            short.update([_hash(tokens)] if tokens else [])
        else:
            seen.update(set(ngrams(tokens, n)))
    if not tasks:
        raise RollforgeError(f"no evaluation tasks in {', '.join(paths)}")
    limit = max(2, TEMPLATE_SHARE * tasks)
    templates = {g for g, count in seen.items() if count > limit}
    grams: set[int] = set()
    if templates:
        for _, tokens in _user_words(paths, hashlib.sha256()):
            grams.update(_content_grams(tokens, n, templates))
    else:
        grams = set(seen)
    return EvalTasks(", ".join(paths), digest.hexdigest(), n, tasks, frozenset(ids), frozenset(grams),
                     frozenset(short), len(templates))  # fmt: skip


def _content_grams(tokens: list[str], n: int, templates: set[int]) -> Iterator[int]:
    """The n-grams of ``tokens`` that are not templates and hold at most n/2 words a template covers."""
    hashes = list(ngrams(tokens, n))
    covered = [0] * (len(tokens) + 1)  # +1 at a template's start, -1 past its end: a running count
    for start, g in enumerate(hashes):
        if g in templates:
            covered[start] += 1
            covered[start + n] -= 1
    in_template, running = [], 0
    for k in range(len(tokens)):
        running += covered[k]
        in_template.append(1 if running > 0 else 0)
    prefix = [0]
    for flag in in_template:
        prefix.append(prefix[-1] + flag)
    for start, g in enumerate(hashes):
        if g not in templates and prefix[start + n] - prefix[start] <= n // 2:
            yield g


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0  # build_eval_tasks says what is wrong with the path


@lru_cache(maxsize=2)
def _cached(path: str, n: int, mtime: float) -> EvalTasks:
    return build_eval_tasks(path, n)


def load_eval_tasks(path: str, n: int = DEFAULT_NGRAM) -> EvalTasks:
    """``build_eval_tasks``, once per process and file state (every filtering process prepares it)."""
    return _cached(path, n, _mtime(path))
