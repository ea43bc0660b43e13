"""Bedrock tiers end to end: OpenAI SDK -> real router (uvicorn) -> aiobotocore -> fake.

The router serves a three-tier Bedrock policy whose provider points at the fake
runtime through `endpoint_url`; everything between the SDK and the fake is the
code that runs in production.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from fakes.bedrock_runtime import (
    BedrockReply,
    FakeBedrock,
    ToolUse,
    run_fake_bedrock,
    use_fake_aws_credentials,
)
from helpers import serve_router, write_policy
from llm_router.service import RouterService

PROFILE_ARN = (
    "arn:aws:bedrock:us-west-2:111122223333:application-inference-profile/large01"
)
HELLO = [{"role": "user", "content": "hello"}]
PRICES = {"small": (0.1, 0.5), "medium": (2.0, 10.0), "large": (4.0, 20.0)}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def bedrock_policy(endpoint_url: str) -> str:
    """Three Bedrock tiers on one fake endpoint; small falls back to medium."""
    return f"""
version: 1
name: test-bedrock
providers:
  bedrock:
    type: bedrock
    region: us-east-1
    endpoint_url: {endpoint_url}
tiers:
  small:
    provider: bedrock
    model: claude-haiku
    target: global.anthropic.claude-haiku-5-5
    input_usd_per_million: {PRICES["small"][0]}
    output_usd_per_million: {PRICES["small"][1]}
    fallback: [medium]
  medium:
    provider: bedrock
    model: claude-sonnet
    target: global.anthropic.claude-sonnet-5-5
    region: eu-west-1
    input_usd_per_million: {PRICES["medium"][0]}
    output_usd_per_million: {PRICES["medium"][1]}
  large:
    provider: bedrock
    model: claude-opus
    target: {PROFILE_ARN}
    region: us-west-2
    input_usd_per_million: {PRICES["large"][0]}
    output_usd_per_million: {PRICES["large"][1]}
"""


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeBedrock]:
    with run_fake_bedrock() as running:
        yield running


@pytest.fixture(scope="module")
def router(
    fake: FakeBedrock, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, RouterService]]:
    with pytest.MonkeyPatch.context() as patch:
        use_fake_aws_credentials(patch)
        policy = write_policy(
            tmp_path_factory.mktemp("bedrock"), bedrock_policy(fake.url)
        )
        with serve_router(
            policy,
            retries_per_tier=0,
            breaker_failures=1000,
            reload_watch=False,
        ) as running:
            yield running


@pytest.fixture
def client(
    router: tuple[str, RouterService], fake: FakeBedrock
) -> Iterator[openai.OpenAI]:
    fake.reset()
    fake.default = BedrockReply()
    with openai.OpenAI(
        base_url=router[0] + "/v1", api_key="unused", max_retries=0
    ) as sdk:
        yield sdk


def read_metric(url: str, name: str, **labels: str) -> float:
    """The value of one Prometheus sample on the router's /metrics (0 if absent)."""
    text = httpx.get(url + "/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(
                sample.labels.get(k) == v for k, v in labels.items()
            ):
                return float(sample.value)
    return 0.0


def tier_totals(url: str, tier: str, model: str) -> tuple[float, float, float]:
    """Input tokens, output tokens and cost the router has counted for a tier."""
    return (
        read_metric(
            url, "llm_router_tokens_total", tier=tier, model=model, type="input"
        ),
        read_metric(
            url, "llm_router_tokens_total", tier=tier, model=model, type="output"
        ),
        read_metric(url, "llm_router_cost_usd_total", tier=tier, model=model),
    )


def test_non_streamed_call_returns_the_bedrock_answer_with_router_headers(
    client: openai.OpenAI, fake: FakeBedrock
) -> None:
    fake.script(BedrockReply(text="Bonjour.", input_tokens=8, output_tokens=4))

    raw = client.chat.completions.with_raw_response.create(
        model="small", messages=HELLO
    )
    completion = raw.parse()

    assert raw.headers["x-router-tier"] == "small"
    assert raw.headers["x-router-model"] == "claude-haiku"
    assert completion.model == "claude-haiku"
    assert completion.choices[0].message.content == "Bonjour."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (
        8,
        4,
    )
    assert fake.requests[-1].model_id == "global.anthropic.claude-haiku-5-5"


def test_streamed_usage_reaches_metrics_and_cost_exactly(
    client: openai.OpenAI, router: tuple[str, RouterService], fake: FakeBedrock
) -> None:
    url = router[0]
    before = tier_totals(url, "large", "claude-opus")
    fake.script(
        BedrockReply(text="a b c d e f g h", input_tokens=1234, output_tokens=567)
    )

    stream = client.chat.completions.create(
        model="large",
        messages=HELLO,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "a b c d e f g h"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == 1234
    assert chunks[-1].usage.completion_tokens == 567
    input_price, output_price = PRICES["large"]
    expected_cost = (1234 * input_price + 567 * output_price) / 1_000_000
    after = tier_totals(url, "large", "claude-opus")
    assert after[0] - before[0] == 1234
    assert after[1] - before[1] == 567
    assert after[2] - before[2] == pytest.approx(expected_cost, rel=1e-9)
    received = fake.requests[-1]
    assert (received.model_id, received.region) == (PROFILE_ARN, "us-west-2")


def test_streamed_usage_is_counted_even_when_the_client_does_not_ask_for_it(
    client: openai.OpenAI, router: tuple[str, RouterService], fake: FakeBedrock
) -> None:
    url = router[0]
    before = tier_totals(url, "medium", "claude-sonnet")
    fake.script(BedrockReply(input_tokens=300, output_tokens=45))

    chunks = list(
        client.chat.completions.create(model="medium", messages=HELLO, stream=True)
    )

    assert all(c.usage is None for c in chunks)
    after = tier_totals(url, "medium", "claude-sonnet")
    assert (after[0] - before[0], after[1] - before[1]) == (300, 45)
    assert after[2] - before[2] == pytest.approx((300 * 2.0 + 45 * 10.0) / 1e6)
    assert fake.requests[-1].region == "eu-west-1"


def test_throttling_without_a_fallback_is_a_429_for_the_client(
    client: openai.OpenAI, fake: FakeBedrock
) -> None:
    fake.throttle()

    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="large", messages=HELLO)

    assert caught.value.status_code == 429
    assert "throttling" in caught.value.message.lower()


def test_throttled_small_tier_falls_back_to_medium(
    client: openai.OpenAI, fake: FakeBedrock
) -> None:
    fake.throttle()
    fake.script(BedrockReply(text="from medium"))

    raw = client.chat.completions.with_raw_response.create(
        model="small", messages=HELLO, stream=True
    )
    chunks = list(raw.parse())

    assert raw.headers["x-router-tier"] == "medium"
    assert raw.headers["x-router-fallbacks"] == "1"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "from medium"
    )
    assert [r.model_id for r in fake.requests] == [
        "global.anthropic.claude-haiku-5-5",
        "global.anthropic.claude-sonnet-5-5",
    ]


def test_bad_request_is_a_400_carrying_the_bedrock_message(
    client: openai.OpenAI,
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="small", messages=HELLO, temperature=1.5)

    assert "temperature: range: 0..1" in caught.value.message


def test_remote_image_urls_are_a_400_naming_what_bedrock_accepts(
    client: openai.OpenAI, fake: FakeBedrock
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="small",
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is this?"},
                        {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
                    ],
                }
            ],
        )

    assert "data: URL" in caught.value.message
    assert fake.requests == []


def test_access_denied_names_the_profile_and_the_stream_permission(
    client: openai.OpenAI, fake: FakeBedrock
) -> None:
    fake.fail("AccessDeniedException")

    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="large", messages=HELLO, stream=True)

    assert caught.value.status_code == 502
    assert PROFILE_ARN in caught.value.message
    assert "bedrock:InvokeModelWithResponseStream" in caught.value.message


def test_mid_stream_failure_arrives_as_an_sse_error_event(
    router: tuple[str, RouterService], fake: FakeBedrock
) -> None:
    fake.reset()
    fake.script(
        BedrockReply(
            text="a b c d e f",
            stream_error="modelStreamErrorException",
            stream_error_after=1,
            message="The model stopped unexpectedly.",
        )
    )

    with httpx.stream(
        "POST",
        router[0] + "/v1/chat/completions",
        json={"model": "small", "messages": HELLO, "stream": True},
    ) as response:
        events = [
            line.removeprefix("data: ")
            for line in response.iter_lines()
            if line.startswith("data: ")
        ]

    assert response.status_code == 200
    assert events[-1] == "[DONE]"
    error = json.loads(events[-2])["error"]
    assert "The model stopped unexpectedly." in error["message"]


def test_tool_call_round_trip_through_the_sdk(
    client: openai.OpenAI, fake: FakeBedrock
) -> None:
    fake.script(
        BedrockReply(
            text="", tool_uses=[ToolUse("get_weather", {"city": "Oslo"}, "tu_1")]
        ),
        BedrockReply(text="3 C and clear in Oslo."),
    )
    messages: list[dict[str, object]] = [
        {"role": "user", "content": "Weather in Oslo?"}
    ]

    first = client.chat.completions.create(
        model="medium", messages=messages, tools=[WEATHER_TOOL]
    )
    call = first.choices[0].message.tool_calls[0]
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 3}'},
    ]
    second = client.chat.completions.create(
        model="medium", messages=messages, tools=[WEATHER_TOOL]
    )

    assert first.choices[0].finish_reason == "tool_calls"
    assert (call.id, call.function.name) == ("tu_1", "get_weather")
    assert json.loads(call.function.arguments) == {"city": "Oslo"}
    assert second.choices[0].message.content == "3 C and clear in Oslo."
    sent = fake.requests[-1].body["messages"]
    assert sent[1]["content"][0]["toolUse"]["toolUseId"] == "tu_1"
    assert sent[2]["content"][0]["toolResult"] == {
        "toolUseId": "tu_1",
        "content": [{"text": '{"temp_c": 3}'}],
    }


def test_signed_reasoning_survives_a_tool_round_trip_through_the_sdk(
    client: openai.OpenAI, fake: FakeBedrock
) -> None:
    fake.require_reasoning_before_tool_use = True
    fake.script(
        BedrockReply(
            text="",
            reasoning="Need the weather tool.",
            tool_uses=[ToolUse("get_weather", {"city": "Oslo"}, "tu_2")],
        ),
        BedrockReply(text="Mild."),
    )
    messages: list[dict[str, object]] = [
        {"role": "user", "content": "Weather in Oslo?"}
    ]
    first = client.chat.completions.create(
        model="large", messages=messages, tools=[WEATHER_TOOL]
    )
    assistant = first.choices[0].message.model_dump(exclude_none=True)
    result = {"role": "tool", "tool_call_id": "tu_2", "content": "9 C"}

    without = {k: v for k, v in assistant.items() if k != "reasoning_blocks"}
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="large", messages=[*messages, without, result], tools=[WEATHER_TOOL]
        )
    second = client.chat.completions.create(
        model="large", messages=[*messages, assistant, result], tools=[WEATHER_TOOL]
    )

    assert assistant["reasoning_content"] == "Need the weather tool."
    assert "must start with a thinking block" in caught.value.message
    assert second.choices[0].message.content == "Mild."
    sent = fake.requests[-1].body["messages"][1]["content"]
    assert sent[0]["reasoningContent"]["reasoningText"]["signature"]


def test_streamed_tool_calls_reassemble_in_the_sdk(
    client: openai.OpenAI, fake: FakeBedrock
) -> None:
    fake.script(
        BedrockReply(
            text="", tool_uses=[ToolUse("get_weather", {"city": "Lima"}, "tu_9")]
        )
    )

    stream = client.chat.completions.create(
        model="medium",
        messages=[{"role": "user", "content": "Weather in Lima?"}],
        tools=[WEATHER_TOOL],
        stream=True,
    )
    arguments, ids, finish = "", [], None
    for chunk in stream:
        for choice in chunk.choices:
            for delta in choice.delta.tool_calls or ():
                ids += [delta.id] if delta.id else []
                arguments += (delta.function.arguments or "") if delta.function else ""
            finish = choice.finish_reason or finish

    assert ids == ["tu_9"]
    assert json.loads(arguments) == {"city": "Lima"}
    assert finish == "tool_calls"


async def test_64_concurrent_streams_through_the_router(
    router: tuple[str, RouterService], fake: FakeBedrock
) -> None:
    fake.reset()
    fake.default = BedrockReply(
        text=" ".join(["word"] * 40), chunk_delay_s=0.1, output_tokens=20
    )
    first_content: list[float] = []
    finished: list[float] = []

    async def one(sdk: openai.AsyncOpenAI) -> int:
        seen, tokens = False, 0
        stream = await sdk.chat.completions.create(
            model="small",
            messages=HELLO,
            stream=True,
            stream_options={"include_usage": True},
        )
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content and not seen:
                seen = True
                first_content.append(time.perf_counter())
            if chunk.usage is not None:
                tokens = chunk.usage.completion_tokens
        finished.append(time.perf_counter())
        return tokens

    async with openai.AsyncOpenAI(
        base_url=router[0] + "/v1", api_key="unused", max_retries=0
    ) as sdk:
        started = time.perf_counter()
        results = await asyncio.gather(*(one(sdk) for _ in range(64)))
        wall = time.perf_counter() - started

    assert results == [20] * 64
    assert max(first_content) < min(finished), (max(first_content), min(finished))
    assert wall < 16, f"64 streams of ~2 s took {wall:.1f} s through the router"


def test_policy_example_files_load() -> None:
    from llm_router.policy.loader import load_policy

    root = Path(__file__).resolve().parents[3] / "services/router/config"
    bedrock = load_policy(root / "bedrock.yaml")
    nim = load_policy(root / "nim.yaml")

    assert list(bedrock.tiers) == ["small", "medium", "large"]
    assert {bedrock.providers[t.provider].type for t in bedrock.tiers.values()} == {
        "bedrock"
    }
    prices = [t.output_usd_per_million for t in bedrock.tiers.values()]
    assert prices == sorted(prices), "tiers must be listed cheapest first"
    assert {nim.providers[t.provider].type for t in nim.tiers.values()} == {"openai"}
