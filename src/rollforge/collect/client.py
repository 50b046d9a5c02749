"""POST JSON with retries: exponential backoff with jitter on 429, 5xx, timeouts and connection errors.

Every failure ends as one :class:`CallFailed` with a stable ``reason`` code (``http_500``, ``http_429``,
``timeout``, ``connection_error``, ``malformed_response``, ``unparsable_model_output``, ...) and the number
of attempts made, so the runner can record it and the summary can count it.

A 400 is the request's fault and is not retried, with one exception: ``transformers serve`` answers 400 when
it cannot parse what the *model* generated (a tool call whose arguments are not JSON, an unclosed
``<tool_call>``). That is a property of one sample, not of the request, so the call is sampled again like a
5xx and, if every attempt fails, recorded as ``unparsable_model_output``. Replies that are not a JSON object are not retried: a
server that answers 200 with the wrong shape (a wrong URL, a protocol mismatch) answers the same way again.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

SNIPPET = 200  # characters of an error body kept in the failure record
# What transformers serve's 400 says when its parser rejects the model's own generation
# (transformers/utils/chat_parsing/content_parsers.py); a 400 naming neither is the request's fault.
MODEL_OUTPUT_PARSE_ERRORS = ("could not parse region", "could not parse after dialect transforms")


class CallFailed(Exception):
    """A call that failed for good: ``reason`` is a stable code, ``attempts`` the requests made."""

    def __init__(self, reason: str, message: str, attempts: int) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.attempts = attempts


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int = 3  # retries after the first attempt
    timeout: float = 300.0  # seconds for one whole request (generation can be slow)
    base_delay: float = 1.0  # first backoff; doubles each retry
    max_delay: float = 60.0

    def delay(self, retry: int, retry_after: float | None, rng: random.Random) -> float:
        """Backoff before retry number ``retry`` (0-based): half fixed, half random ("equal jitter"), so
        concurrent workers that failed together do not retry together, and a wait is never near zero."""
        cap = min(self.max_delay, self.base_delay * 2**retry)
        wait = cap / 2 + rng.uniform(0, cap / 2)
        if retry_after is not None:  # the server said how long: wait at least that (within max_delay)
            wait = max(wait, min(retry_after, self.max_delay))
        return wait


@dataclass(slots=True)
class CallStats:
    requests: int = 0
    retries: int = 0


class JsonClient:
    """An httpx.AsyncClient plus the retry policy; counts every request made."""

    def __init__(self, client: httpx.AsyncClient, policy: RetryPolicy, seed: int | None = None) -> None:
        self.client = client
        self.policy = policy
        self.stats = CallStats()
        self.rng = random.Random(seed)

    async def post(
        self, url: str, body: Any, headers: dict[str, str] | None = None
    ) -> tuple[dict[str, Any], int]:
        """The reply's JSON object and the attempts it took; raises :class:`CallFailed`."""
        content = orjson.dumps(body)
        send_headers = {"content-type": "application/json", **(headers or {})}
        attempt = 0
        while True:
            attempt += 1
            self.stats.requests += 1
            outcome = await self._attempt(url, content, send_headers, attempt)
            if isinstance(outcome, dict):
                return outcome, attempt
            reason, message, retry_after = outcome
            if attempt > self.policy.max_retries:
                raise CallFailed(reason, message, attempt)
            self.stats.retries += 1
            await asyncio.sleep(self.policy.delay(attempt - 1, retry_after, self.rng))

    async def _attempt(
        self, url: str, content: bytes, headers: dict[str, str], attempt: int
    ) -> dict[str, Any] | tuple[str, str, float | None]:
        """One request: the reply's JSON object, or a retryable (reason, message, retry_after)."""
        try:
            async with asyncio.timeout(self.policy.timeout):  # a total deadline, not httpx's per-read one
                reply = await self.client.post(url, content=content, headers=headers)
        except (TimeoutError, httpx.TimeoutException):
            return "timeout", f"no reply within {self.policy.timeout:g}s from {url}", None
        except httpx.TransportError as exc:
            return "connection_error", f"{type(exc).__name__}: {exc} ({url})", None
        status = reply.status_code
        if 200 <= status < 300:
            return _json_object(reply, url, attempt)
        message = f"HTTP {status} from {url}: {reply.text[:SNIPPET]}"
        if status == 429 or status >= 500:
            return f"http_{status}", message, _retry_after(reply)
        if status == 400 and any(marker in reply.text for marker in MODEL_OUTPUT_PARSE_ERRORS):
            return "unparsable_model_output", message, None  # resample: the next generation may parse
        raise CallFailed(f"http_{status}", message, attempt)  # other 4xx: the request itself is wrong


def _json_object(reply: httpx.Response, url: str, attempt: int) -> dict[str, Any]:
    try:
        value = orjson.loads(reply.content)
    except orjson.JSONDecodeError as exc:
        raise CallFailed(
            "malformed_response", f"reply from {url} is not JSON ({exc}): {reply.text[:SNIPPET]!r}", attempt
        ) from None
    if not isinstance(value, dict):
        raise CallFailed("malformed_response", f"reply from {url} is a JSON {type(value).__name__}", attempt)
    return value


def _retry_after(reply: httpx.Response) -> float | None:
    """Retry-After in seconds; the HTTP-date form is ignored (the exponential backoff still applies)."""
    try:
        return max(0.0, float(reply.headers.get("retry-after", "")))
    except ValueError:
        return None
