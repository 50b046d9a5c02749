"""How one planned row becomes one rollout line: through a NeMo Gym agent, or a chat endpoint + a verifier.

NeMo Gym's wire shapes (nemo_gym/rollout_collection.py, responses_api_agents/simple_agent/app.py,
nemo_gym/base_resources_server.py):

- agent ``POST /run``: the body is the planned row itself (dataset fields, ``responses_create_params``,
  ``_ng_task_index``, ``_ng_rollout_index``, ``agent_ref``); the reply is the verify response: the request
  echoed plus ``response``, ``reward`` and verifier fields. The collector then sets the two indices (and
  ``agent_ref``) on it and writes it.
- resources server ``POST /verify``: the body is the run request plus ``response``; the reply echoes it with
  ``reward`` and any verifier fields (``extracted_answer``, ``judge_evaluations``, ...).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from rollforge.collect.client import CallFailed, JsonClient
from rollforge.collect.responses import BadCompletion, assistant_text, chat_to_response
from rollforge.collect.tasks import ROLLOUT_INDEX, TASK_INDEX
from rollforge.collect.verify import Verdict, verify
from rollforge.convert import Unconvertible, convert_prompt


class StageFailed(Exception):
    """A row that failed for good: which stage (prompt, generate, verify, run) and the call's failure."""

    def __init__(self, stage: str, failure: CallFailed) -> None:
        super().__init__(f"{stage}: {failure}")
        self.stage = stage
        self.failure = failure


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


async def _call(
    http: JsonClient, stage: str, url: str, body: Any, headers: dict[str, str] | None = None
) -> tuple[dict[str, Any], int]:
    try:
        return await http.post(url, body, headers)
    except CallFailed as exc:
        raise StageFailed(stage, exc) from None


def _malformed(stage: str, message: str, attempts: int) -> StageFailed:
    return StageFailed(stage, CallFailed("malformed_response", message, attempts))


def _stamp(result: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    """The collector's own fields win over whatever the server echoed (as NeMo Gym's collector does)."""
    result[TASK_INDEX] = row[TASK_INDEX]
    result[ROLLOUT_INDEX] = row[ROLLOUT_INDEX]
    if "agent_ref" in row:
        result["agent_ref"] = row["agent_ref"]
    return result


def _check_verified(reply: dict[str, Any], stage: str, url: str, attempts: int) -> None:
    if not _is_number(reply.get("reward")):
        raise _malformed(stage, f"reply from {url} has no numeric reward", attempts)


@dataclass(frozen=True, slots=True)
class AgentMode:
    """POST each row to a running NeMo Gym agent server's ``/run``."""

    agent_url: str

    async def rollout(self, http: JsonClient, row: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.agent_url.rstrip('/')}/run"
        reply, attempts = await _call(http, "run", url, row)
        _check_verified(reply, "run", url, attempts)
        if not isinstance(reply.get("response"), dict):
            raise _malformed("run", f"reply from {url} has no response object", attempts)
        reply.setdefault("responses_create_params", row["responses_create_params"])
        return _stamp(reply, row)


@dataclass(frozen=True, slots=True)
class ChatMode:
    """Generate with an OpenAI-compatible Chat Completions endpoint; score with a built-in verifier or a
    NeMo Gym resources server's ``/verify``."""

    base_url: str
    model: str
    api_key: str | None = None
    verifier: str | None = None  # exact | math | choice | none
    verify_url: str | None = None
    executor: Executor | None = None  # runs the verifier off the event loop (math-verify: seconds of SymPy)

    def request(self, params: dict[str, Any]) -> dict[str, Any]:
        """The chat-completions body for a row's (already overridden) create-params."""
        try:
            messages, tools = convert_prompt(params)
        except Unconvertible as exc:
            raise StageFailed("prompt", CallFailed(exc.reason, exc.message, 0)) from None
        body: dict[str, Any] = {"model": self.model, "messages": messages}
        if params.get("temperature") is not None:
            body["temperature"] = params["temperature"]
        if params.get("max_output_tokens") is not None:
            body["max_tokens"] = params["max_output_tokens"]
        if params.get("top_p") is not None:
            body["top_p"] = params["top_p"]
        if tools:
            body["tools"] = tools
            if isinstance(params.get("tool_choice"), str):
                body["tool_choice"] = params["tool_choice"]
        return body

    async def rollout(self, http: JsonClient, row: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.base_url.rstrip('/')}/chat/completions"
        headers = {"authorization": f"Bearer {self.api_key}"} if self.api_key else None
        body = self.request(row["responses_create_params"])
        completion, attempts = await _call(http, "generate", url, body, headers)
        try:
            response = chat_to_response(completion, self.model)
        except BadCompletion as exc:
            raise _malformed("generate", f"{exc} ({url})", attempts) from None
        rollout = {**row, "response": response}
        if self.verify_url:
            return _stamp(await self._remote_verify(http, rollout), row)
        verdict = await self._score(assistant_text(response), row.get("expected_answer"))
        rollout.update(verdict.fields() if verdict else {"reward": 0.0})
        return _stamp(rollout, row)

    async def _score(self, text: str, expected: Any) -> Verdict | None:
        kind = self.verifier or "none"
        if self.executor is None:
            return verify(kind, text, expected)
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self.executor, verify, kind, text, expected
            )
        except BrokenProcessPool as exc:  # a verifier process died (out of memory, a crash in SymPy)
            raise StageFailed("verify", CallFailed("verifier_crashed", str(exc), 1)) from None

    async def _remote_verify(self, http: JsonClient, rollout: dict[str, Any]) -> dict[str, Any]:
        url = f"{(self.verify_url or '').rstrip('/')}/verify"
        reply, attempts = await _call(http, "verify", url, rollout)
        _check_verified(reply, "verify", url, attempts)
        # The reply echoes the request; keep ours where it left something out.
        return {**rollout, **reply}
