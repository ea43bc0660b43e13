"""Fault injection: what the router does when an upstream fails (docs/operations.md)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest

from helpers import (
    UpstreamScript,
    fake_openai_upstream,
    free_port,
    serve,
    serve_router,
    write_policy,
)
from llm_router.service import RouterService

HELLO = [{"role": "user", "content": "hi"}]


def two_upstream_policy(
    bad_url: str, good_url: str, *, large_extra: str = "    fallback: [medium]\n"
) -> str:
    """small and medium call the good upstream, large the bad one."""
    return (
        "version: 1\nname: faults\nproviders:\n"
        f"  bad:\n    type: openai\n    base_url: {bad_url}/v1\n"
        f"  good:\n    type: openai\n    base_url: {good_url}/v1\n"
        "tiers:\n"
        "  small:\n    provider: good\n    model: up-small\n"
        "    input_usd_per_million: 0.1\n    output_usd_per_million: 0.4\n"
        "  medium:\n    provider: good\n    model: up-medium\n"
        "    input_usd_per_million: 1\n    output_usd_per_million: 4\n"
        "  large:\n    provider: bad\n    model: up-large\n"
        "    input_usd_per_million: 3\n    output_usd_per_million: 12\n"
        f"{large_extra}"
    )


@pytest.fixture
def bad() -> UpstreamScript:
    return UpstreamScript(content="from the large upstream")


@pytest.fixture
def good() -> UpstreamScript:
    return UpstreamScript(content="from the medium upstream")


@pytest.fixture
def upstreams(bad: UpstreamScript, good: UpstreamScript) -> Iterator[tuple[str, str]]:
    with (
        serve(fake_openai_upstream(bad)) as bad_url,
        serve(fake_openai_upstream(good)) as good_url,
    ):
        yield bad_url, good_url


def start_router(
    tmp_path: Path, text: str, **settings: Any
) -> Any:  # the context manager of serve_router
    values: dict[str, Any] = {"retry_backoff_s": 0.01, "cache_backend": "none"}
    values.update(settings)
    return serve_router(write_policy(tmp_path, text), **values)


def sample(service: RouterService, name: str, **labels: str) -> float:
    value = service.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def chat(url: str, **body: Any) -> httpx.Response:
    payload = {"model": "large", "messages": HELLO, **body}
    return httpx.post(url + "/v1/chat/completions", json=payload, timeout=30)


def sse_events(response: httpx.Response) -> list[str]:
    return [
        line[len("data: ") :]
        for line in response.text.split("\n")
        if line.startswith("data: ")
    ]


def test_500_falls_back_to_the_next_tier_and_says_so_in_headers(
    tmp_path: Path,
    upstreams: tuple[str, str],
    bad: UpstreamScript,
    good: UpstreamScript,
) -> None:
    bad.status = 500
    with start_router(tmp_path, two_upstream_policy(*upstreams)) as (url, service):
        client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
        raw = client.chat.completions.with_raw_response.create(
            model="large", messages=HELLO
        )
        client.close()
        completion = raw.parse()

        assert raw.headers["x-router-tier"] == "medium", raw.headers
        assert raw.headers["x-router-routed-tier"] == "large"
        assert raw.headers["x-router-fallbacks"] == "1"
        assert raw.headers["x-router-model"] == "up-medium"
        assert completion.model == "up-medium"
        assert completion.choices[0].message.content == "from the medium upstream"
        assert len(bad.requests) == 2, "one retry on the failing tier first"
        assert len(good.requests) == 1
        assert (
            sample(
                service,
                "llm_router_fallbacks_total",
                from_tier="large",
                to_tier="medium",
                reason="http_500",
            )
            == 1
        )
        assert (
            sample(
                service,
                "llm_router_tokens_total",
                tier="medium",
                model="up-medium",
                type="input",
            )
            == 11
        ), "usage is charged to the tier that answered"


def test_429_with_retry_after_is_retried_on_the_same_tier_after_waiting(
    tmp_path: Path, upstreams: tuple[str, str], bad: UpstreamScript
) -> None:
    bad.status, bad.failures, bad.retry_after = 429, 1, "1"
    with start_router(tmp_path, two_upstream_policy(*upstreams)) as (url, _service):
        started = time.monotonic()
        response = chat(url)
        elapsed = time.monotonic() - started

    assert response.status_code == 200, response.text
    assert response.headers["x-router-tier"] == "large"
    assert response.headers["x-router-fallbacks"] == "0"
    assert elapsed >= 1.0, "Retry-After: 1 must be waited out"
    assert len(bad.requests) == 2


def test_429_whose_retry_after_exceeds_the_budget_falls_back_at_once(
    tmp_path: Path, upstreams: tuple[str, str], bad: UpstreamScript
) -> None:
    bad.status, bad.retry_after = 429, "30"
    policy = two_upstream_policy(*upstreams)
    with start_router(tmp_path, policy, retry_budget_s=2.0) as (url, service):
        started = time.monotonic()
        response = chat(url)
        elapsed = time.monotonic() - started
        reason = sample(
            service,
            "llm_router_fallbacks_total",
            from_tier="large",
            to_tier="medium",
            reason="http_429",
        )

    assert response.status_code == 200, response.text
    assert response.headers["x-router-tier"] == "medium"
    assert elapsed < 2.0
    assert len(bad.requests) == 1
    assert reason == 1


def test_429_on_the_last_tier_is_a_429_with_retry_after(
    tmp_path: Path, upstreams: tuple[str, str], bad: UpstreamScript
) -> None:
    bad.status, bad.retry_after = 429, "7"
    policy = two_upstream_policy(*upstreams, large_extra="")
    with start_router(tmp_path, policy, retries_per_tier=0) as (url, _service):
        response = chat(url)

    assert response.status_code == 429, response.text
    assert response.headers["retry-after"] == "7"
    error = response.json()["error"]
    assert error["type"] == "rate_limit_error"
    assert "HTTP 429" in error["message"]


def test_slow_first_byte_is_a_504_when_there_is_no_fallback(
    tmp_path: Path, upstreams: tuple[str, str], bad: UpstreamScript
) -> None:
    bad.delay_s = 1.2
    extra = "    timeouts: {connect: 1, first_byte: 0.3, total: 10}\n"
    policy = two_upstream_policy(*upstreams, large_extra=extra)
    with start_router(tmp_path, policy, retries_per_tier=0) as (url, service):
        started = time.monotonic()
        response = chat(url)
        elapsed = time.monotonic() - started
        errors = sample(
            service, "llm_router_errors_total", tier="large", reason="timeout"
        )

    assert response.status_code == 504, response.text
    assert response.json()["error"]["type"] == "timeout_error"
    assert elapsed < 1.0, "the first-byte timeout, not the upstream, ends the call"
    assert errors == 1


def test_slow_first_byte_falls_back_when_the_tier_has_a_fallback(
    tmp_path: Path, upstreams: tuple[str, str], bad: UpstreamScript
) -> None:
    bad.delay_s = 1.2
    extra = (
        "    timeouts: {connect: 1, first_byte: 0.3, total: 10}\n"
        "    fallback: [medium]\n"
    )
    policy = two_upstream_policy(*upstreams, large_extra=extra)
    with start_router(tmp_path, policy, retries_per_tier=0) as (url, _service):
        response = chat(url, stream=True)

    assert response.status_code == 200, response.text
    assert response.headers["x-router-tier"] == "medium"
    events = sse_events(response)
    assert events[-1] == "[DONE]"
    text = "".join(
        orjson.loads(e)["choices"][0]["delta"].get("content", "")
        for e in events[:-1]
        if orjson.loads(e)["choices"]
    )
    assert text == "from the medium upstream"


def test_total_timeout_ends_a_stream_with_an_error_event(
    tmp_path: Path, upstreams: tuple[str, str], bad: UpstreamScript
) -> None:
    bad.chunk_delay_s = 0.4
    extra = "    timeouts: {connect: 1, first_byte: 5, total: 1}\n"
    bad.content = "one two three four five six seven eight"
    policy = two_upstream_policy(*upstreams, large_extra=extra)
    with start_router(tmp_path, policy) as (url, _service):
        started = time.monotonic()
        response = chat(url, stream=True)
        elapsed = time.monotonic() - started

    assert response.status_code == 200
    events = sse_events(response)
    assert events[-1] == "[DONE]"
    error = orjson.loads(events[-2])["error"]
    assert error["type"] == "timeout_error", error
    assert elapsed < 3.0


def test_connection_reset_mid_stream_ends_with_an_error_event_and_done(
    tmp_path: Path, upstreams: tuple[str, str], bad: UpstreamScript
) -> None:
    bad.content = "one two three four five"
    bad.break_after_chunks = 2
    with start_router(tmp_path, two_upstream_policy(*upstreams)) as (url, service):
        response = chat(url, stream=True)
        broken = sample(
            service,
            "llm_router_errors_total",
            tier="large",
            reason="upstream_broken",
        )

    assert response.status_code == 200
    events = sse_events(response)
    contents = [orjson.loads(e) for e in events[:-1]]
    assert [c["choices"][0]["delta"]["content"] for c in contents[:2]] == [
        "one",
        " two",
    ]
    assert contents[-1]["error"]["code"] == "upstream_broken", contents[-1]
    assert events[-1] == "[DONE]"
    assert len(bad.requests) == 1, "nothing is retried once bytes reached the client"
    assert broken == 1


def test_unreachable_upstream_falls_back(
    tmp_path: Path, upstreams: tuple[str, str]
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    policy = two_upstream_policy(dead, upstreams[1])
    with start_router(tmp_path, policy) as (url, service):
        response = chat(url)
        reason = sample(
            service,
            "llm_router_fallbacks_total",
            from_tier="large",
            to_tier="medium",
            reason="upstream_unreachable",
        )

    assert response.status_code == 200, response.text
    assert response.headers["x-router-tier"] == "medium"
    assert reason == 1


def test_when_every_tier_fails_the_error_names_the_tiers_tried(
    tmp_path: Path,
    upstreams: tuple[str, str],
    bad: UpstreamScript,
    good: UpstreamScript,
) -> None:
    bad.status, good.status = 503, 500
    with start_router(tmp_path, two_upstream_policy(*upstreams)) as (url, _service):
        response = chat(url)

    assert response.status_code == 502, response.text
    message = response.json()["error"]["message"]
    assert "HTTP 500" in message
    assert "Tried tiers: large, medium." in message


def test_an_upstream_400_is_neither_retried_nor_sent_elsewhere(
    tmp_path: Path,
    upstreams: tuple[str, str],
    bad: UpstreamScript,
    good: UpstreamScript,
) -> None:
    bad.status = 400
    with start_router(tmp_path, two_upstream_policy(*upstreams)) as (url, _service):
        response = chat(url)

    assert response.status_code == 400, response.text
    assert len(bad.requests) == 1
    assert good.requests == []


def test_circuit_opens_after_repeated_failures_and_a_probe_closes_it(
    tmp_path: Path,
    upstreams: tuple[str, str],
    bad: UpstreamScript,
) -> None:
    bad.status = 502
    settings = {"retries_per_tier": 0, "breaker_failures": 2, "breaker_open_s": 0.5}
    policy = two_upstream_policy(*upstreams)
    with start_router(tmp_path, policy, **settings) as (url, service):

        def state() -> float:
            return sample(
                service, "llm_router_circuit_state", tier="large", model="up-large"
            )

        first = [chat(url).headers["x-router-tier"] for _ in range(2)]
        opened = state()
        skipped = chat(url)
        calls_while_open = len(bad.requests)
        circuit_open = sample(
            service,
            "llm_router_fallbacks_total",
            from_tier="large",
            to_tier="medium",
            reason="circuit_open",
        )

        bad.status = 200
        time.sleep(0.6)
        probe = chat(url)
        closed = state()

    assert first == ["medium", "medium"]
    assert opened == 2, "open after two failures"
    assert skipped.headers["x-router-tier"] == "medium"
    assert calls_while_open == 2, "an open circuit does not call the upstream"
    assert circuit_open == 1
    assert probe.headers["x-router-tier"] == "large", "the half-open probe succeeded"
    assert closed == 0


DESIGN = (
    "Design a distributed key-value store that tolerates network partitions, "
    "replicates data across regions and scales to millions of users. "
    "Discuss consensus, consistency trade-offs and failure handling."
)


@pytest.mark.parametrize("stream", [False, True])
def test_a_tool_result_goes_back_to_the_tier_that_issued_the_call(
    tmp_path: Path,
    upstreams: tuple[str, str],
    bad: UpstreamScript,
    good: UpstreamScript,
    stream: bool,
) -> None:
    # large is down, so medium answers the design question, with a tool call.
    bad.status = 500
    good.tool_call = "call_7"
    policy = two_upstream_policy(*upstreams)
    first = [{"role": "user", "content": DESIGN}]
    with start_router(tmp_path, policy, retries_per_tier=0) as (url, _service):
        issued = chat(url, model="auto", messages=first, stream=stream)
        # large is back; the classifier would send the turn there again.
        bad.status = 200
        answer = {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_7",
                    "type": "function",
                    "function": {"name": "search", "arguments": "{}"},
                }
            ],
        }
        result = {"role": "tool", "tool_call_id": "call_7", "content": "3 results"}
        follow_up = chat(url, model="auto", messages=[*first, answer, result])
        unknown = chat(
            url,
            model="auto",
            messages=[*first, answer, {**result, "tool_call_id": "call_never"}],
        )

    assert issued.headers["x-router-routed-tier"] == "large"
    assert issued.headers["x-router-tier"] == "medium"
    if stream:
        assert '"id":"call_7"' in issued.text
    assert follow_up.headers["x-router-tier"] == "medium", follow_up.headers
    assert unknown.headers["x-router-tier"] == "large", "no record: classified"
