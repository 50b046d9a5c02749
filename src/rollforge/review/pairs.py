"""DPO pairs under review: any preference format rollforge writes, read back as (prompt, chosen, rejected).

``trl``      {"prompt", "chosen", "rejected", "tools" (JSON string), rewards, "prompt_id", "chosen_id", ...}
``nemo-rl``  {"context", "completions": [{"rank", "completion"}, ...]} (lower rank preferred) + rewards
``openai``   {"input": {"messages", "tools"}, "preferred_output", "non_preferred_output"} (no rewards)

A pair's id is the hash of its row (as a rollout's is of its line): labels are stored under it. A release
directory is reviewed through its ``dpo/`` split.
"""

from __future__ import annotations

import glob
import json
import os
from dataclasses import dataclass, field
from typing import Any

import orjson

from rollforge.build.manifest import MANIFEST
from rollforge.errors import RollforgeError
from rollforge.identity import rollout_id
from rollforge.io.lines import Chunk, LineReader
from rollforge.io.sources import Source, discover, split_name
from rollforge.report.rows import conversation_chars, parse_tools
from rollforge.review.index import DEFAULT_STRATA, Listing, OffsetReader, no_stdin, prompt_preview, tool_calls


@dataclass(slots=True)
class Pair:
    """One preference row, whatever its format: the shared prompt and the two completions."""

    fmt: str  # trl | nemo-rl | openai
    prompt: list[dict[str, Any]]
    chosen: list[dict[str, Any]]
    rejected: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    chosen_reward: float | None = None
    rejected_reward: float | None = None
    fields: dict[str, Any] = field(default_factory=dict)  # prompt_id, chosen_id, rejected_id, margin, ...


@dataclass(frozen=True, slots=True)
class PairEntry:
    """One indexed pair: what its list row shows, and where its line is."""

    id: str  # hash of the row: what its label is stored under
    source: int
    offset: int
    line: int
    file: str  # the file's stem (train, validation, ...): the list's second filter
    preview: str
    chosen_reward: float | None
    rejected_reward: float | None
    chosen_chars: int
    rejected_chars: int
    chosen_calls: int
    rejected_calls: int

    @property
    def margin(self) -> float | None:
        if self.chosen_reward is None or self.rejected_reward is None:
            return None
        return self.chosen_reward - self.rejected_reward

    @property
    def value(self) -> float | None:
        return self.margin

    @property
    def group(self) -> str:
        return self.file


def pair_format(row: Any) -> str | None:
    """The preference format a row is in, or None when it is not a preference row."""
    if not isinstance(row, dict):
        return None
    if "chosen" in row and "rejected" in row:
        return "trl"
    if "completions" in row and "context" in row:
        return "nemo-rl"
    if "preferred_output" in row and "non_preferred_output" in row:
        return "openai"
    return None


def _messages(value: Any, what: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(m, dict) for m in value):
        raise ValueError(f"{what} is not a list of messages")
    return value


def _reward(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def read_pair(row: dict[str, Any]) -> Pair:
    """The pair a preference row holds; ValueError saying what is wrong with a malformed one."""
    fmt = pair_format(row)
    if fmt is None:
        raise ValueError("not a preference row")
    fields = {k: v for k, v in row.items() if k in ("prompt_id", "chosen_id", "rejected_id", "margin")}
    rewards = (_reward(row.get("chosen_reward")), _reward(row.get("rejected_reward")))
    if fmt == "trl":
        prompt, chosen, rejected = row["prompt"], row["chosen"], row["rejected"]
        tools: Any = row.get("tools")
    elif fmt == "nemo-rl":
        completions = row["completions"]
        if not isinstance(completions, list) or len(completions) != 2:
            raise ValueError("completions must hold exactly two entries")
        if not all(isinstance(c, dict) and isinstance(c.get("rank"), int) for c in completions):
            raise ValueError("each completion needs an integer rank")
        best, worst = sorted(completions, key=lambda c: c["rank"])
        if best["rank"] == worst["rank"]:
            raise ValueError("both completions have the same rank")
        prompt, chosen, rejected = row["context"], best.get("completion"), worst.get("completion")
        tools = row.get("tools")
    else:  # openai
        given = row.get("input")
        if not isinstance(given, dict):
            raise ValueError("input is not an object")
        prompt, chosen, rejected = given.get("messages"), row["preferred_output"], row["non_preferred_output"]
        tools = given.get("tools")
    try:
        tool_list = parse_tools(tools)
    except RollforgeError as exc:
        raise ValueError(str(exc)) from None
    return Pair(
        fmt,
        _messages(prompt, "the prompt"),
        _messages(chosen, "the chosen side"),
        _messages(rejected, "the rejected side"),
        tool_list,
        *rewards,
        fields,
    )


def loads(line: bytes) -> Any:
    """A row as JSON. orjson refuses lone surrogates (``"\\ud800"``); the standard library reads them, and
    the pages show them escaped."""
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return json.loads(line)


def _peek(source: Source, lines: int = 5) -> str | None:
    """The preference format of a file's first JSON row (a broken first line is looked past); None for
    anything else: rollouts, or nothing readable."""
    for number, _, line in LineReader(Chunk(source)):
        if number >= lines:
            break
        try:
            return pair_format(loads(line))
        except ValueError:
            continue
    return None


def release_pairs(directory: str) -> list[str]:
    """The DPO files of a release directory."""
    files = sorted(glob.glob(os.path.join(glob.escape(directory), "dpo", "*.jsonl*")))
    if not files:
        raise RollforgeError(
            f"{directory} is a release with no DPO pairs (no dpo/*.jsonl)",
            hint=f"review its rollouts instead: rollforge review {os.path.join(directory, 'review', 'sample.jsonl')}",
        )
    return files


def pair_sources(paths: list[str]) -> list[Source] | None:
    """The sources to review as pairs, or None when the paths hold rollouts. Refuses a mix of the two."""
    names: list[str] = []
    for path in paths:
        if os.path.isdir(path) and os.path.isfile(os.path.join(path, MANIFEST)):
            names += release_pairs(path)
        elif os.path.isdir(path) and (inside := glob.glob(os.path.join(glob.escape(path), "*", MANIFEST))):
            raise RollforgeError(
                f"{path} holds releases, not one release",
                hint="pass one of them: " + ", ".join(sorted(os.path.dirname(m) for m in inside)),
            )
        else:
            names.append(path)
    sources = discover(names).sources
    no_stdin(sources)
    kinds = {source.path: _peek(source) for source in sources}
    pairs = [p for p, kind in kinds.items() if kind]
    if not pairs:
        return None
    others = [p for p, kind in kinds.items() if not kind]
    if others:
        raise RollforgeError(
            f"{others[0]} holds rollouts (or unreadable rows) but {pairs[0]} holds DPO pairs: "
            "one review shows one kind",
            hint="review them separately, each with its own --db",
        )
    return [s for s in sources if kinds[s.path]]


@dataclass(slots=True)
class PairIndex(Listing):
    formats: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, sources: list[Source], strata: tuple[float, ...] = DEFAULT_STRATA) -> PairIndex:
        index = cls(sources, [], tuple(sorted(strata)))
        for number, source in enumerate(sources):
            reader = OffsetReader(Chunk(source))
            file = os.path.basename(split_name(source.path)[0])
            for index_in_file, _, line in reader:
                index._read(line, number, reader.last_offset, index_in_file + 1, file)
        index.tally()
        return index

    def _read(self, line: bytes, source: int, offset: int, number: int, file: str) -> None:
        try:
            row = loads(line)
        except ValueError:
            self.rejected["invalid_json"] += 1
            return
        try:
            pair = read_pair(row)
            chosen, rejected = pair.chosen, pair.rejected
            entry = PairEntry(
                rollout_id(line),
                source,
                offset,
                number,
                file,
                prompt_preview(pair.prompt),
                pair.chosen_reward,
                pair.rejected_reward,
                conversation_chars(chosen, None),
                conversation_chars(rejected, None),
                tool_calls(chosen),
                tool_calls(rejected),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            self.rejected["not_a_pair"] += 1
            return
        self.formats.add(pair.fmt)
        self.add(entry)

    def load_pair(self, entry: PairEntry) -> Pair:
        source = self.sources[entry.source]
        line = self.raw_line(entry)
        try:
            if rollout_id(line) != entry.id:
                raise ValueError("changed")
            return read_pair(loads(line))
        except (ValueError, KeyError, TypeError):
            raise RollforgeError(
                f"{source.path}:{entry.line} changed since the review server started"
            ) from None
