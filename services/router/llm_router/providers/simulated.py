"""The built-in offline provider.

It answers with a deterministic text saying which tier and model would have
answered, with token counts derived from the prompt, so the embedded default
policy, demos and load tests run with no network and no account.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator

from llm_router.policy.schema import SimulatedProvider as SimulatedConfig
from llm_router.providers.base import (
    JSON,
    Completion,
    Provider,
    UpstreamCall,
    Usage,
)

_FILLER_TEXT = (
    "the answer would continue here with the detail this request asks for "
    "written by the model of the chosen tier in its own words"
)
_FILLER = _FILLER_TEXT.split()
_WORDS_PER_CHUNK = 6


class SimulatedProvider(Provider):
    """Deterministic completions computed locally."""

    kind = "simulated"

    def __init__(self, name: str, config: SimulatedConfig) -> None:
        super().__init__(name)
        self.latency_s = config.latency_ms / 1000
        self.chunk_delay_s = config.chunk_delay_ms / 1000

    async def complete(self, call: UpstreamCall) -> Completion:
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        words, usage, finish = _answer(call)
        body = {
            "id": _completion_id(call),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": call.target,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": " ".join(words)},
                    "finish_reason": finish,
                }
            ],
            "usage": usage.to_openai(),
        }
        return Completion(body=body, usage=usage)

    async def stream(self, call: UpstreamCall) -> AsyncIterator[JSON]:
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        words, usage, finish = _answer(call)
        base = {
            "id": _completion_id(call),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": call.target,
        }
        yield {
            **base,
            "choices": [
                {"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}
            ],
        }
        for start in range(0, len(words), _WORDS_PER_CHUNK):
            if self.chunk_delay_s:
                await asyncio.sleep(self.chunk_delay_s)
            piece = " ".join(words[start : start + _WORDS_PER_CHUNK])
            text = piece if start == 0 else " " + piece
            yield {
                **base,
                "choices": [
                    {"index": 0, "delta": {"content": text}, "finish_reason": None}
                ],
            }
        yield {
            **base,
            "choices": [{"index": 0, "delta": {}, "finish_reason": finish}],
        }
        yield {**base, "choices": [], "usage": usage.to_openai()}


def estimate_prompt_tokens(body: JSON) -> int:
    """About four characters per token, as most BPE vocabularies average."""
    chars = 0
    for message in body.get("messages") or ():
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    chars += len(part["text"])
        chars += 16  # role and message framing
    return max(1, chars // 4)


def _answer(call: UpstreamCall) -> tuple[list[str], Usage, str]:
    body = call.body
    input_tokens = estimate_prompt_tokens(body)
    digest = hashlib.blake2b(
        repr(body.get("messages")).encode(), digest_size=4
    ).digest()
    wanted = 40 + int.from_bytes(digest, "big") % 160
    cap = body.get("max_completion_tokens") or body.get("max_tokens")
    finish = "stop"
    if isinstance(cap, int) and cap < wanted:
        wanted, finish = max(1, cap), "length"
    header = (
        f"[simulated] The {call.tier} tier ({call.config.model}) would have "
        "answered this request."
    ).split()
    words = (header + _FILLER * (wanted // len(_FILLER) + 1))[:wanted]
    if len(words) < len(header):
        words = header[:wanted]
    return words, Usage(input_tokens, len(words)), finish


def _completion_id(call: UpstreamCall) -> str:
    return f"chatcmpl-sim-{call.request_id or 'local'}"
