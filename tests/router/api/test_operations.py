"""Decisions, models, health and metrics endpoints."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from helpers import openai_policy, serve_router, write_policy
from llm_router.service import RouterService


@pytest.fixture(scope="module")
def router() -> Iterator[tuple[str, RouterService]]:
    with serve_router() as running:
        yield running


def test_route_returns_the_decision_without_calling_an_upstream(
    router: tuple[str, RouterService],
) -> None:
    body = {"messages": [{"role": "user", "content": "Write a FizzBuzz in Python"}]}

    response = httpx.post(router[0] + "/v1/route", json=body)

    decision = response.json()
    assert response.status_code == 200, response.text
    assert decision["tier"] == "small"
    assert decision["model"] == "sim-small"
    assert decision["task"] == "code_generation"
    assert 0 <= decision["complexity"] <= 1
    assert decision["top_tasks"][0] == {
        "task": "code_generation",
        "probability": decision["confidence"],
    }
    assert "complexity" in decision["reason"]
    assert decision["decision_ms"] >= 0
    assert (
        'llm_router_requests_total{model="sim-small"'
        not in httpx.get(router[0] + "/metrics").text
    )


def test_route_rejects_a_bad_body_with_an_openai_error(
    router: tuple[str, RouterService],
) -> None:
    response = httpx.post(router[0] + "/v1/route", json={"messages": "hi"})

    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "messages"


def test_models_lists_auto_tiers_and_models_without_secrets(tmp_path: Path) -> None:
    text = openai_policy("http://127.0.0.1:9").replace(
        "type: openai\n", "type: openai\n    api_key: sk-hidden-value\n"
    )
    policy = write_policy(tmp_path, text)
    with serve_router(policy) as (url, _):
        raw = httpx.get(url + "/v1/models")
        with openai.OpenAI(base_url=url + "/v1", api_key="x") as client:
            ids = [model.id for model in client.models.list()]

    assert ids == [
        "auto",
        "small",
        "medium",
        "large",
        "up-small",
        "up-medium",
        "up-large",
    ]
    assert "sk-hidden-value" not in raw.text
    assert "127.0.0.1:9" not in raw.text


def test_health_and_readiness(router: tuple[str, RouterService]) -> None:
    health = httpx.get(router[0] + "/healthz")
    ready = httpx.get(router[0] + "/readyz")

    assert health.status_code == 200
    assert ready.status_code == 200
    assert ready.json()["classifier_ready"] is True
    assert ready.json()["tiers"] == ["small", "medium", "large"]


def test_metrics_count_requests_tokens_and_cost_per_tier(
    router: tuple[str, RouterService],
) -> None:
    body = {"model": "large", "messages": [{"role": "user", "content": "hi"}]}
    answer = httpx.post(router[0] + "/v1/chat/completions", json=body).json()

    text = httpx.get(router[0] + "/metrics").text

    usage = answer["usage"]
    cost = (usage["prompt_tokens"] * 3.0 + usage["completion_tokens"] * 15.0) / 1e6
    assert 'llm_router_requests_total{model="sim-large",status="ok",task=' in text
    assert (
        'llm_router_tokens_total{model="sim-large",tier="large",type="output"} '
        f"{float(usage['completion_tokens'])}"
    ) in text
    assert f'llm_router_cost_usd_total{{model="sim-large",tier="large"}} {cost}' in text
    assert "llm_router_decision_seconds_bucket" in text
    assert "llm_router_upstream_seconds_bucket" in text
