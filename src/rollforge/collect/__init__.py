"""Collect rollouts in NeMo Gym's own format: from a NeMo Gym agent server, or from an OpenAI-compatible
chat endpoint scored by a built-in verifier or a NeMo Gym resources server (``rollforge collect``)."""

from rollforge.collect.client import CallFailed, JsonClient, RetryPolicy
from rollforge.collect.responses import assistant_text, chat_to_response
from rollforge.collect.runner import CollectOptions, CollectSummary, collect
from rollforge.collect.verify import VERIFIERS, Verdict, extract_choice, verify

__all__ = [
    "VERIFIERS",
    "CallFailed",
    "CollectOptions",
    "CollectSummary",
    "JsonClient",
    "RetryPolicy",
    "Verdict",
    "assistant_text",
    "chat_to_response",
    "collect",
    "extract_choice",
    "verify",
]
