"""Chat completions through a real uvicorn server, driven by the official SDK."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from helpers import (
    UpstreamScript,
    fake_openai_upstream,
    openai_policy,
    serve,
    serve_router,
    write_policy,
)
from llm_router.service import RouterService

FIZZBUZZ = "Write a simple FizzBuzz program in Python."
DESIGN = (
    "Design a distributed key-value store that tolerates network partitions, "
    "replicates data across regions and scales to millions of users. "
    "Discuss consensus, consistency trade-offs and failure handling."
)


@pytest.fixture(scope="module")
def router() -> Iterator[tuple[str, RouterService]]:
    with serve_router() as running:
        yield running


@pytest.fixture(scope="module")
def client(router: tuple[str, RouterService]) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=router[0] + "/v1", api_key="unused", max_retries=0
    ) as sdk:
        yield sdk


def test_auto_routes_fizzbuzz_to_small_and_reports_the_decision(
    client: openai.OpenAI,
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": FIZZBUZZ}]
    )
    completion = raw.parse()

    assert raw.headers["x-router-tier"] == "small", raw.headers
    assert raw.headers["x-router-task"] == "code_generation"
    assert 0.0 <= float(raw.headers["x-router-complexity"]) <= 1.0
    assert raw.headers["x-router-model"] == "sim-small"
    assert float(raw.headers["x-router-decision-ms"]) >= 0
    assert raw.headers["x-request-id"]
    assert completion.model == "sim-small"
    assert "small tier" in (completion.choices[0].message.content or "")
    assert completion.usage is not None
    assert completion.usage.completion_tokens > 0


def test_auto_routes_distributed_system_design_to_large(
    client: openai.OpenAI,
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": DESIGN}]
    )

    assert raw.headers["x-router-tier"] == "large", raw.headers


@pytest.mark.parametrize(
    ("model", "tier"),
    [("large", "large"), ("small", "small"), ("sim-medium", "medium")],
)
def test_model_forces_a_tier_by_tier_name_or_model_id(
    client: openai.OpenAI, model: str, tier: str
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "hello there"}]
    )

    assert raw.headers["x-router-tier"] == tier
    assert raw.parse().model == f"sim-{tier}"


def test_stream_ends_with_done_and_hides_usage_unless_asked(
    router: tuple[str, RouterService],
) -> None:
    body = {
        "model": "auto",
        "stream": True,
        "messages": [{"role": "user", "content": "Summarize: the cat sat."}],
    }
    response = httpx.post(router[0] + "/v1/chat/completions", json=body)

    events = [line for line in response.text.split("\n\n") if line]
    assert response.headers["content-type"].startswith("text/event-stream")
    assert events[-1] == "data: [DONE]", events[-3:]
    assert all('"usage"' not in event for event in events), events[-3:]
    assert response.headers["x-router-tier"] == "small"


def test_stream_with_include_usage_returns_usage_in_the_last_chunk(
    client: openai.OpenAI, router: tuple[str, RouterService]
) -> None:
    stream = client.chat.completions.create(
        model="auto",
        stream=True,
        stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "Rewrite this more formally: hi."}],
    )
    chunks = list(stream)

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("[simulated]"), text
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == len(text.split())
    assert {c.model for c in chunks} == {"sim-small"}


def test_multi_turn_follow_up_after_code_is_a_rewrite(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="auto",
        messages=[
            {
                "role": "user",
                "content": "Write a Python function that merges two sorted lists.",
            },
            {
                "role": "assistant",
                "content": "def merge(a, b):\n    return sorted(a + b)",
            },
            {"role": "user", "content": "Make it shorter."},
        ],
    )

    assert raw.headers["x-router-task"] == "rewrite", raw.headers


def test_array_content_is_classified_like_text(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="auto",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Write a simple FizzBuzz program"},
                    {"type": "text", "text": "in Python."},
                ],
            }
        ],
    )

    assert raw.headers["x-router-task"] == "code_generation"


def test_tool_result_turn_stays_on_the_tier_that_issued_the_call(
    client: openai.OpenAI,
) -> None:
    first = [{"role": "user", "content": DESIGN}]
    issued = client.chat.completions.with_raw_response.create(
        model="auto", messages=first
    )
    follow_up = [
        *first,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "search", "arguments": "{}"},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "ok"},
    ]
    answered = client.chat.completions.with_raw_response.create(
        model="auto", messages=follow_up
    )

    assert answered.headers["x-router-tier"] == issued.headers["x-router-tier"]


def test_openai_provider_forwards_to_an_upstream_with_usage_and_stream(
    tmp_path: Path,
) -> None:
    script = UpstreamScript(content="one two three four")
    with serve(fake_openai_upstream(script)) as upstream:
        policy = write_policy(tmp_path, openai_policy(upstream))
        with serve_router(policy) as (url, _service):
            client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
            completion = client.chat.completions.create(
                model="medium", messages=[{"role": "user", "content": "hi"}]
            )
            stream = list(
                client.chat.completions.create(
                    model="large",
                    stream=True,
                    messages=[{"role": "user", "content": "hi"}],
                )
            )
            metrics = httpx.get(url + "/metrics").text
            client.close()

    assert completion.model == "up-medium"
    assert completion.choices[0].message.content == "one two three four"
    assert script.requests[0]["model"] == "up-medium"
    assert script.requests[1]["stream_options"] == {"include_usage": True}
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "one two three four"
    assert all(c.usage is None for c in stream)
    assert (
        'llm_router_tokens_total{model="up-large",tier="large",type="input"} 11.0'
        in (metrics)
    )
    cost = 11 * 3.0 / 1e6 + 7 * 12.0 / 1e6
    assert f'llm_router_cost_usd_total{{model="up-large",tier="large"}} {cost}' in (
        metrics
    ), metrics


def test_time_to_first_token_waits_for_the_first_word(tmp_path: Path) -> None:
    # The upstream sends its role-only chunk at once and thinks for 0.3 s:
    # the first token is the first word, not that chunk.
    script = UpstreamScript(content="late words", role_first_s=0.3)
    with serve(fake_openai_upstream(script)) as upstream:
        policy = write_policy(tmp_path, openai_policy(upstream))
        with serve_router(policy) as (url, _service):
            with openai.OpenAI(
                base_url=url + "/v1", api_key="x", max_retries=0
            ) as client:
                stream = client.chat.completions.create(
                    model="large",
                    stream=True,
                    messages=[{"role": "user", "content": "hi"}],
                )
                text = "".join(
                    c.choices[0].delta.content or "" for c in stream if c.choices
                )
            metrics = httpx.get(url + "/metrics").text

    assert text == "late words"
    series = '{model="up-large",tier="large"}'
    samples = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in metrics.splitlines()
        if line.startswith("llm_router_time_to_first_token_seconds_")
    }
    assert samples[f"llm_router_time_to_first_token_seconds_count{series}"] == 1
    assert samples[f"llm_router_time_to_first_token_seconds_sum{series}"] >= 0.3
