"""The Bedrock provider driven through real aiobotocore against the local fake."""

from __future__ import annotations

import asyncio
import base64
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from fakes.bedrock_runtime import (
    BedrockReply,
    FakeBedrock,
    ToolUse,
    run_fake_bedrock,
    use_fake_aws_credentials,
)
from llm_router.errors import (
    UpstreamRejected,
    UpstreamThrottled,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from llm_router.policy.schema import BedrockProvider as BedrockConfig
from llm_router.policy.schema import TierConfig, Timeouts
from llm_router.providers import build_provider
from llm_router.providers.base import JSON, UpstreamCall
from llm_router.providers.bedrock import BedrockProvider

HELLO = [{"role": "user", "content": "hello"}]
PROFILE_ARN = (
    "arn:aws:bedrock:us-west-2:111122223333:application-inference-profile/abc123"
)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeBedrock]:
    with run_fake_bedrock() as running:
        yield running


@pytest.fixture(autouse=True)
def _fresh(fake: FakeBedrock, monkeypatch: pytest.MonkeyPatch) -> None:
    fake.reset()
    fake.default = BedrockReply()
    use_fake_aws_credentials(monkeypatch)


@pytest.fixture
async def provider(fake: FakeBedrock) -> AsyncIterator[BedrockProvider]:
    built = build_provider(
        "bedrock",
        BedrockConfig(type="bedrock", region="us-east-1", endpoint_url=fake.url),
    )
    assert isinstance(built, BedrockProvider)
    yield built
    await built.aclose()


def make_call(body: JSON | None = None, **tier: Any) -> UpstreamCall:
    """A call to a Bedrock tier; `tier` overrides TierConfig fields."""
    fields: dict[str, Any] = {
        "provider": "bedrock",
        "model": "claude-small",
        "target": "global.anthropic.claude-haiku-5-5",
        "input_usd_per_million": 0.1,
        "output_usd_per_million": 0.5,
    }
    fields.update(tier)
    return UpstreamCall(
        tier="small",
        config=TierConfig(**fields),
        body=body or {"model": "auto", "messages": HELLO},
        request_id="req-1",
    )


async def collect(
    provider: BedrockProvider, call: UpstreamCall, into: list[JSON] | None = None
) -> list[JSON]:
    """Every chunk of one stream (also appended to `into` as they arrive)."""
    chunks = [] if into is None else into
    async for chunk in provider.stream(call):
        chunks.append(chunk)
    return chunks


async def call_once(
    provider: BedrockProvider, call: UpstreamCall, streamed: bool
) -> None:
    """Make one streamed or non-streamed call to the end."""
    if streamed:
        await collect(provider, call)
    else:
        await provider.complete(call)


async def test_complete_returns_an_openai_completion_with_usage(
    provider: BedrockProvider, fake: FakeBedrock
) -> None:
    fake.script(BedrockReply(text="Paris.", input_tokens=21, output_tokens=3))

    completion = await provider.complete(make_call())

    body = completion.body
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "Paris."}
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"] == {
        "prompt_tokens": 21,
        "completion_tokens": 3,
        "total_tokens": 24,
    }
    assert (completion.usage.input_tokens, completion.usage.output_tokens) == (21, 3)
    received = fake.requests[-1]
    assert received.operation == "converse"
    assert received.model_id == "global.anthropic.claude-haiku-5-5"
    assert received.region == "us-east-1"


async def test_stream_yields_text_deltas_then_finish_then_usage_last(
    provider: BedrockProvider, fake: FakeBedrock
) -> None:
    fake.script(
        BedrockReply(
            text="one two three four five", input_tokens=1234, output_tokens=567
        )
    )

    chunks = await collect(provider, make_call())

    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(
        c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]
    )
    assert text == "one two three four five"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {
        "prompt_tokens": 1234,
        "completion_tokens": 567,
        "total_tokens": 1801,
    }
    assert all("usage" not in c for c in chunks[:-1])
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert fake.requests[-1].operation == "converse-stream"


async def test_stream_counts_prompt_cache_reads_as_input(
    provider: BedrockProvider, fake: FakeBedrock
) -> None:
    fake.script(BedrockReply(input_tokens=10, output_tokens=2, cache_read_tokens=90))

    chunks = await collect(provider, make_call())

    usage = chunks[-1]["usage"]
    assert usage["prompt_tokens"] == 100, usage
    assert usage["prompt_tokens_details"] == {"cached_tokens": 90}


async def test_stream_without_metadata_still_ends_with_a_usage_chunk(
    provider: BedrockProvider, fake: FakeBedrock
) -> None:
    fake.script(BedrockReply(omit_metadata=True))

    chunks = await collect(provider, make_call())

    assert chunks[-1]["usage"]["total_tokens"] == 0
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"


async def test_request_translation_reaches_bedrock_as_converse_fields(
    provider: BedrockProvider, fake: FakeBedrock
) -> None:
    pixel = base64.b64encode(b"\x89PNG fake pixels").decode()
    body = {
        "model": "auto",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "No lists."}]},
            {"role": "user", "content": "What is in this image?"},
            {"role": "assistant", "content": "Send it."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Here:"},
                    {
                        "type": "image_url",
                        "image_url": {"url": f"data:image/png;base64,{pixel}"},
                    },
                ],
            },
        ],
        "max_completion_tokens": 64,
        "temperature": 0.2,
        "top_p": 0.9,
        "stop": "END",
    }

    await provider.complete(make_call(body))

    sent = fake.requests[-1].body
    assert sent["system"] == [{"text": "Be brief."}, {"text": "No lists."}]
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    image = sent["messages"][2]["content"][1]["image"]
    assert image["format"] == "png"
    assert base64.b64decode(image["source"]["bytes"]) == b"\x89PNG fake pixels"
    assert sent["inferenceConfig"] == {
        "maxTokens": 64,
        "temperature": 0.2,
        "topP": 0.9,
        "stopSequences": ["END"],
    }


async def test_tool_call_round_trip_keeps_ids_names_and_arguments(
    provider: BedrockProvider, fake: FakeBedrock
) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city.",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
            },
        }
    ]
    fake.script(
        BedrockReply(
            text="",
            tool_uses=[ToolUse("get_weather", {"city": "Oslo"}, "tooluse_A1")],
        ),
        BedrockReply(text="It is 3 C in Oslo."),
    )
    first = {"model": "auto", "messages": HELLO, "tools": tools, "tool_choice": "auto"}

    answer = await provider.complete(make_call(first))

    choice = answer.body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    call = choice["message"]["tool_calls"][0]
    assert call["id"] == "tooluse_A1"
    assert call["function"]["name"] == "get_weather"
    assert call["function"]["arguments"] == '{"city":"Oslo"}'
    spec = fake.requests[-1].body["toolConfig"]["tools"][0]["toolSpec"]
    assert spec["name"] == "get_weather"
    assert spec["inputSchema"]["json"]["required"] == ["city"]

    second = {
        "model": "auto",
        "messages": [
            *HELLO,
            choice["message"],
            {"role": "tool", "tool_call_id": "tooluse_A1", "content": "3 C"},
        ],
        "tools": tools,
    }
    final = await provider.complete(make_call(second))

    assert final.body["choices"][0]["message"]["content"] == "It is 3 C in Oslo."
    sent = fake.requests[-1].body["messages"]
    assert sent[1]["content"] == [
        {
            "toolUse": {
                "toolUseId": "tooluse_A1",
                "name": "get_weather",
                "input": {"city": "Oslo"},
            }
        }
    ]
    assert sent[2] == {
        "role": "user",
        "content": [
            {"toolResult": {"toolUseId": "tooluse_A1", "content": [{"text": "3 C"}]}}
        ],
    }


async def test_streamed_tool_calls_arrive_as_openai_tool_call_deltas(
    provider: BedrockProvider, fake: FakeBedrock
) -> None:
    fake.script(
        BedrockReply(
            text="Checking.",
            tool_uses=[
                ToolUse("get_weather", {"city": "Oslo"}, "tooluse_A"),
                ToolUse("get_time", {"zone": "CET"}, "tooluse_B"),
            ],
        )
    )

    chunks = await collect(provider, make_call())

    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for choice in chunk["choices"]:
            for delta in choice["delta"].get("tool_calls") or ():
                entry = calls.setdefault(delta["index"], {"arguments": ""})
                if "id" in delta:
                    entry["id"] = delta["id"]
                    entry["name"] = delta["function"]["name"]
                entry["arguments"] += delta["function"]["arguments"]
    assert calls == {
        0: {"id": "tooluse_A", "name": "get_weather", "arguments": '{"city":"Oslo"}'},
        1: {"id": "tooluse_B", "name": "get_time", "arguments": '{"zone":"CET"}'},
    }
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"


async def test_reasoning_comes_back_as_reasoning_content_and_signed_blocks(
    provider: BedrockProvider, fake: FakeBedrock
) -> None:
    fake.script(
        BedrockReply(text="42.", reasoning="Six times seven."),
        BedrockReply(text="42.", reasoning="Six times seven."),
    )

    completion = await provider.complete(make_call())
    chunks = await collect(provider, make_call())

    message = completion.body["choices"][0]["message"]
    assert message["content"] == "42."
    assert message["reasoning_content"] == "Six times seven."
    signed = {"text": "Six times seven.", "signature": "c2lnbmVkLWJ5LXRoZS1mYWtl"}
    assert message["reasoning_blocks"] == [signed]
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert "".join(d.get("reasoning_content", "") for d in deltas) == (
        "Six times seven."
    )
    assert [d["reasoning_blocks"] for d in deltas if "reasoning_blocks" in d] == [
        [signed]
    ]
    assert "".join(d.get("content") or "" for d in deltas) == "42."


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("max_tokens", "length"),
        ("stop_sequence", "stop"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
    ],
)
async def test_stop_reasons_map_to_openai_finish_reasons(
    provider: BedrockProvider, fake: FakeBedrock, stop_reason: str, finish: str
) -> None:
    fake.script(
        BedrockReply(stop_reason=stop_reason), BedrockReply(stop_reason=stop_reason)
    )

    completion = await provider.complete(make_call())
    chunks = await collect(provider, make_call())

    assert completion.body["choices"][0]["finish_reason"] == finish
    assert chunks[-2]["choices"][0]["finish_reason"] == finish


@pytest.mark.parametrize("streamed", [False, True])
async def test_throttling_is_a_retryable_429(
    provider: BedrockProvider, fake: FakeBedrock, streamed: bool
) -> None:
    fake.throttle()

    with pytest.raises(UpstreamThrottled) as caught:
        await call_once(provider, make_call(), streamed)

    assert caught.value.status_code == 429
    assert caught.value.retryable
    assert "throttling" in caught.value.message.lower()
    assert len(fake.requests) == 1, "botocore must not retry on its own"


async def test_validation_error_is_a_400_with_the_upstream_message(
    provider: BedrockProvider,
) -> None:
    body = {"model": "auto", "messages": HELLO, "temperature": 1.7}

    with pytest.raises(UpstreamRejected) as caught:
        await provider.complete(make_call(body))

    assert caught.value.status_code == 400
    assert not caught.value.retryable
    assert "temperature: range: 0..1" in caught.value.message


@pytest.mark.parametrize(
    ("streamed", "permission"),
    [(False, "bedrock:InvokeModel "), (True, "bedrock:InvokeModelWithResponseStream")],
)
async def test_access_denied_names_the_target_and_the_missing_permission(
    provider: BedrockProvider, fake: FakeBedrock, streamed: bool, permission: str
) -> None:
    fake.fail("AccessDeniedException")
    call = make_call(target=PROFILE_ARN, region="us-west-2")

    with pytest.raises(UpstreamUnavailable) as caught:
        await call_once(provider, call, streamed)

    message = caught.value.message
    assert caught.value.code == "upstream_access_denied"
    assert PROFILE_ARN in message
    assert permission in message
    assert "Model access" in message
    assert fake.requests[-1].region == "us-west-2"


async def test_access_denied_on_a_model_id_names_its_foundation_model_arn(
    provider: BedrockProvider, fake: FakeBedrock
) -> None:
    fake.fail("AccessDeniedException")

    with pytest.raises(UpstreamUnavailable) as caught:
        await provider.complete(make_call(target="amazon.nova-micro-v1:0"))

    assert (
        "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-micro-v1:0"
        in caught.value.message
    )


async def test_unknown_model_says_to_check_the_target_and_region(
    provider: BedrockProvider, fake: FakeBedrock
) -> None:
    fake.fail("ResourceNotFoundException")

    with pytest.raises(UpstreamUnavailable) as caught:
        await provider.complete(make_call())

    assert caught.value.code == "upstream_model_not_found"
    assert "global.anthropic.claude-haiku-5-5" in caught.value.message


@pytest.mark.parametrize(
    ("error", "expected", "status"),
    [
        ("ModelTimeoutException", UpstreamTimeout, 504),
        ("ServiceUnavailableException", UpstreamUnavailable, 502),
        ("InternalServerException", UpstreamUnavailable, 502),
        ("ModelNotReadyException", UpstreamUnavailable, 502),
        ("ServiceQuotaExceededException", UpstreamThrottled, 429),
    ],
)
async def test_bedrock_failures_map_to_router_statuses(
    provider: BedrockProvider,
    fake: FakeBedrock,
    error: str,
    expected: type[Exception],
    status: int,
) -> None:
    fake.fail(error)

    with pytest.raises(expected) as caught:
        await provider.complete(make_call())

    assert getattr(caught.value, "status_code", None) == status
    assert error in str(caught.value)


async def test_mid_stream_exception_event_raises_after_the_first_chunks(
    provider: BedrockProvider, fake: FakeBedrock
) -> None:
    fake.script(
        BedrockReply(
            text="a b c d e f",
            stream_error="modelStreamErrorException",
            stream_error_after=2,
            message="The model stopped unexpectedly.",
        )
    )
    received: list[JSON] = []

    with pytest.raises(UpstreamUnavailable) as caught:
        await collect(provider, make_call(), received)

    assert len(received) == 3  # role chunk and two text deltas
    assert "The model stopped unexpectedly." in caught.value.message


async def test_mid_stream_throttling_event_is_a_429(
    provider: BedrockProvider, fake: FakeBedrock
) -> None:
    fake.script(BedrockReply(stream_error="throttlingException", stream_error_after=1))

    with pytest.raises(UpstreamThrottled):
        await collect(provider, make_call())


async def test_first_byte_timeout_is_a_504(
    provider: BedrockProvider, fake: FakeBedrock
) -> None:
    call = make_call(timeouts=Timeouts(first_byte=0.3))
    await provider.complete(call)  # creates this timeout's region client
    fake.script(BedrockReply(delay_s=2.5))

    started = time.perf_counter()
    with pytest.raises(UpstreamTimeout) as caught:
        await provider.complete(call)

    assert time.perf_counter() - started < 2.0
    assert "first_byte" in caught.value.message


async def test_a_stream_silent_past_first_byte_is_a_504(
    provider: BedrockProvider, fake: FakeBedrock
) -> None:
    fake.script(BedrockReply(text="a b c d", chunk_delay_s=1.5))
    call = make_call(timeouts=Timeouts(first_byte=0.4))

    received: list[JSON] = []
    with pytest.raises(UpstreamTimeout) as caught:
        await collect(provider, call, received)

    assert len(received) == 1  # the role chunk from messageStart
    assert "first_byte" in caught.value.message


async def test_total_timeout_ends_a_slow_stream_with_a_504(
    provider: BedrockProvider, fake: FakeBedrock
) -> None:
    await provider.complete(make_call())  # the region client exists already
    fake.script(
        BedrockReply(text=" ".join(["w"] * 40), chunk_delay_s=0.1, words_per_delta=1)
    )
    call = make_call(timeouts=Timeouts(total=1.0))

    received: list[JSON] = []
    with pytest.raises(UpstreamTimeout) as caught:
        await collect(provider, call, received)

    assert 1 <= len(received) < 40
    assert "total timeout" in caught.value.message


async def test_refused_connection_is_unavailable(fake: FakeBedrock) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    provider = BedrockProvider(
        "bedrock",
        BedrockConfig(
            type="bedrock",
            region="us-east-1",
            endpoint_url=f"http://127.0.0.1:{closed_port}",
        ),
    )
    try:
        with pytest.raises(UpstreamUnavailable) as caught:
            await provider.complete(make_call())
    finally:
        await provider.aclose()

    assert caught.value.code == "upstream_unreachable"


async def test_unsupported_content_is_a_400_naming_what_is_accepted(
    provider: BedrockProvider, fake: FakeBedrock
) -> None:
    body = {
        "model": "auto",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": "https://x/cat.png"}}
                ],
            }
        ],
    }

    with pytest.raises(UpstreamRejected) as caught:
        await provider.complete(make_call(body))

    assert "data: URL" in caught.value.message
    assert "png, jpeg, gif, webp" in caught.value.message
    assert fake.requests == [], "nothing may reach Bedrock"


async def test_one_client_per_region_is_reused(
    provider: BedrockProvider, fake: FakeBedrock
) -> None:
    await provider.complete(make_call())
    await provider.complete(make_call())
    await provider.complete(make_call(region="eu-west-1"))

    assert [r.region for r in fake.requests] == ["us-east-1", "us-east-1", "eu-west-1"]
    assert len(provider._clients) == 2


async def test_64_concurrent_streams_do_not_stall_each_other(
    provider: BedrockProvider, fake: FakeBedrock
) -> None:
    # Each stream takes about 2 s upstream (20 deltas, 100 ms apart).
    fake.default = BedrockReply(
        text=" ".join(["word"] * 40), chunk_delay_s=0.1, output_tokens=20
    )
    first_content: list[float] = []
    finished: list[float] = []

    async def one() -> int:
        tokens, seen_content = 0, False
        async for chunk in provider.stream(make_call()):
            delta = chunk["choices"][0]["delta"] if chunk["choices"] else {}
            if delta.get("content") and not seen_content:
                seen_content = True
                first_content.append(time.perf_counter())
            if "usage" in chunk:
                tokens = chunk["usage"]["completion_tokens"]
        finished.append(time.perf_counter())
        return tokens

    started = time.perf_counter()
    results = await asyncio.gather(*(one() for _ in range(64)))
    wall = time.perf_counter() - started

    assert results == [20] * 64
    # Interleaved, not queued: every stream was producing before any ended.
    assert max(first_content) < min(finished), (max(first_content), min(finished))
    assert wall < 16, f"64 streams of ~2 s took {wall:.1f} s"


def test_router_without_bedrock_tiers_never_imports_aiobotocore() -> None:
    code = (
        "import sys\n"
        "from llm_router.service import RouterService\n"
        "from llm_router.settings import Settings\n"
        "from llm_router.app import create_app\n"
        "s = Settings(_env_file=None)\n"
        "create_app(s, RouterService.from_settings(s))\n"
        "from llm_router.policy.schema import BedrockProvider as C\n"
        "from llm_router.providers import build_provider\n"
        "build_provider('b', C(type='bedrock', region='us-east-1'))\n"
        "loaded = [m for m in ('aiobotocore', 'botocore') if m in sys.modules]\n"
        "print(','.join(loaded) or 'none')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "none"
