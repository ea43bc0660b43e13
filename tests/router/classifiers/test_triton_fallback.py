"""A router on Triton keeps answering when the Triton server is stopped mid-test.

The router runs under real uvicorn with `classifier=triton`, the client is the
official OpenAI SDK, and Triton is the repository's model repository on
PyTriton's bundled server, started by the repository's launcher. This module
stops that server, so it has a server of its own.
"""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families
from triton_helpers import in_process_classifier

from helpers import serve_router
from llm_router.classifiers.base import Turn

pytestmark = pytest.mark.slow

PROMPTS = [
    "Write a simple FizzBuzz program in Python.",
    "Summarize the following meeting notes in three bullet points: the launch "
    "moves to May, marketing needs two more weeks, QA found four blockers.",
    "Design a distributed key-value store that tolerates network partitions "
    "and scales to millions of users.",
    "hey, how are you today?",
    "A train travels 120 km in 1.5 hours. What is its average speed?",
]


def classifier_fallbacks(http: httpx.Client) -> dict[str, float]:
    """Fallbacks by reason, read from the router's /metrics endpoint."""
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(http.get("/metrics").text):
        for sample in family.samples:
            if sample.name == "llm_router_classifier_fallbacks_total":
                counts[sample.labels["reason"]] = sample.value
    return counts


def ask(sdk: openai.OpenAI, prompt: str) -> str:
    """Send a chat request and return the task the router decided on."""
    raw = sdk.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": prompt}]
    )
    assert raw.http_response.status_code == 200
    assert raw.parse().choices[0].message.content
    return raw.headers["x-router-task"]


def test_router_falls_back_in_process_when_triton_stops(triton: Any) -> None:
    local = in_process_classifier()
    expected_tasks = [r.task for r in local.classify_many([Turn(p) for p in PROMPTS])]

    with (
        serve_router(
            classifier="triton",
            triton_url=triton.endpoints.grpc,
            # Patient while Triton is up, so the first phase measures Triton.
            triton_timeout_ms=10_000,
            cache_backend="none",
        ) as (url, _),
        httpx.Client(base_url=url) as http,
        openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0) as sdk,
    ):
        ready_before = http.get("/readyz")
        tasks_before = [ask(sdk, prompt) for prompt in PROMPTS]
        fallbacks_before = classifier_fallbacks(http)

        triton.stop()
        tasks_after = [ask(sdk, prompt) for prompt in PROMPTS]
        fallbacks_after = classifier_fallbacks(http)
        ready_after = http.get("/readyz")

    assert ready_before.status_code == 200, ready_before.text
    assert ready_before.json()["classifier_reachable"] is True
    assert tasks_before == expected_tasks
    assert sum(fallbacks_before.values()) == 0, fallbacks_before

    assert tasks_after == expected_tasks
    assert fallbacks_after.get("unavailable", 0) >= 1, fallbacks_after
    assert sum(fallbacks_after.values()) == len(PROMPTS), fallbacks_after
    assert fallbacks_after.get("backoff", 0) >= 1, fallbacks_after
    assert ready_after.status_code == 200, ready_after.text
    report = ready_after.json()
    assert report["status"] == "ready"
    assert report["classifier"] == "triton"
    assert report["classifier_reachable"] is False
    assert report["classifier_ready"] is True
    assert report["classifier_fallback"] == local.name
