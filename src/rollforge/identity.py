"""Stable identities: ``prompt_id`` groups repeats of one task across files and runs, ``rollout_id`` names one
trajectory. Both are 64-bit xxh3 hashes in hex; neither depends on file names, line order or task indices.
Two more hashes compare converted rollouts within a run: what the model did (DPO never pairs two equal
trajectories) and the whole conversation (exact duplicates)."""

from __future__ import annotations

from typing import Any

import msgspec
import xxhash


def canonical_prompt(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> bytes:
    """The prompt as canonical JSON: sorted keys, no whitespace, plain strings. Equal prompts, equal bytes."""
    return msgspec.json.encode({"messages": messages, "tools": tools}, order="sorted")


def prompt_id(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> str:
    return xxhash.xxh3_64_hexdigest(canonical_prompt(messages, tools))


_SPACE = frozenset(b" \t\r\n")


def rollout_id(line: bytes) -> str:
    """Hash of the line's bytes (surrounding whitespace stripped): identical lines are the same rollout."""
    start, end = 0, len(line)
    while end > start and line[end - 1] in _SPACE:
        end -= 1
    while start < end and line[start] in _SPACE:
        start += 1
    return xxhash.xxh3_64_hexdigest(memoryview(line)[start:end])


def trajectory_hash(completion: list[dict[str, Any]]) -> int:
    """What the model did: the messages after the prompt."""
    return xxhash.xxh3_64_intdigest(msgspec.json.encode(completion))


def conversation_hash(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> int:
    """Prompt + tools + trajectory: equal for exact duplicates only."""
    return xxhash.xxh3_64_intdigest(msgspec.json.encode([messages, tools]))
