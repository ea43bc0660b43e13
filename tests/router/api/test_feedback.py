"""`POST /v1/feedback` through a real router: accounting, validation, expiry."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from helpers import serve_router, write_policy
from llm_router.service import RouterService


@pytest.fixture
def router() -> Iterator[tuple[str, RouterService]]:
    with serve_router() as running:
        yield running


@pytest.fixture
def http(router: tuple[str, RouterService]) -> Iterator[httpx.Client]:
    url, _ = router
    with httpx.Client(base_url=url, timeout=10) as client:
        yield client


def _chat(http: httpx.Client, prompt: str, **extra: object) -> httpx.Response:
    body = {"model": "auto", "messages": [{"role": "user", "content": prompt}]}
    body.update(extra)
    response = http.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    return response


def _samples(http: httpx.Client, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    response = http.get("/metrics")
    assert response.status_code == 200, response.text
    found = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def test_verdicts_are_counted_per_tier_of_the_request(http: httpx.Client) -> None:
    small = _chat(http, "Write a FizzBuzz program in Python")
    large = _chat(
        http,
        "Design a distributed system for a globally replicated database with "
        "consensus, partitioning and fault tolerance.",
    )
    assert small.headers["x-router-tier"] == "small"
    assert large.headers["x-router-tier"] == "large"

    for response, verdict in ((small, "too_weak"), (small, "too_weak"), (large, "ok")):
        reply = http.post(
            "/v1/feedback",
            json={"request_id": response.headers["x-request-id"], "verdict": verdict},
        )
        assert reply.status_code == 200, reply.text
        assert reply.json() == {
            "request_id": response.headers["x-request-id"],
            "recorded": True,
        }

    counts = _samples(http, "llm_router_feedback_total")
    assert counts[(("tier", "small"), ("verdict", "too_weak"))] == 2.0
    assert counts[(("tier", "large"), ("verdict", "ok"))] == 1.0
    assert (("tier", "small"), ("verdict", "ok")) not in counts
    assert _samples(http, "llm_router_feedback_tasks_total") == {}


def test_reported_task_counts_against_the_predicted_task(http: httpx.Client) -> None:
    response = _chat(http, "Summarize this article in three bullet points: ...")
    predicted = response.headers["x-router-task"]

    reply = http.post(
        "/v1/feedback",
        json={
            "request_id": response.headers["x-request-id"],
            "verdict": "too_strong",
            "task": "rewrite",
        },
    )

    assert reply.status_code == 200, reply.text
    tasks = _samples(http, "llm_router_feedback_tasks_total")
    assert tasks == {(("predicted", predicted), ("reported", "rewrite")): 1.0}
    verdicts = _samples(http, "llm_router_feedback_total")
    tier = response.headers["x-router-tier"]
    assert verdicts == {(("tier", tier), ("verdict", "too_strong")): 1.0}


def test_unknown_request_id_is_a_404_naming_the_window(http: httpx.Client) -> None:
    reply = http.post(
        "/v1/feedback", json={"request_id": "never-seen", "verdict": "ok"}
    )

    assert reply.status_code == 404, reply.text
    error = reply.json()["error"]
    assert "'never-seen'" in error["message"]
    assert "3600 s" in error["message"]
    assert error["param"] == "request_id"
    assert error["code"] == "request_not_found"
    assert _samples(http, "llm_router_feedback_total") == {}


def test_expired_request_id_is_a_404() -> None:
    with (
        serve_router(feedback_window_s=1) as (url, _),
        httpx.Client(base_url=url, timeout=10) as http,
    ):
        response = _chat(http, "hello there")
        time.sleep(1.1)

        reply = http.post(
            "/v1/feedback",
            json={"request_id": response.headers["x-request-id"], "verdict": "ok"},
        )

    assert reply.status_code == 404, reply.text
    assert "1 s after a request" in reply.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"verdict": "ok"}, "request_id"),
        ({"request_id": "x", "verdict": "great"}, "verdict"),
        ({"request_id": "x", "verdict": "ok", "extra": 1}, "extra"),
    ],
)
def test_bad_bodies_are_400_naming_the_field(
    http: httpx.Client, body: dict[str, object], param: str
) -> None:
    reply = http.post("/v1/feedback", json=body)

    assert reply.status_code == 400, reply.text
    assert param in reply.json()["error"]["message"]


def test_unknown_task_is_400_even_for_a_known_request(http: httpx.Client) -> None:
    response = _chat(http, "hello there")

    reply = http.post(
        "/v1/feedback",
        json={
            "request_id": response.headers["x-request-id"],
            "verdict": "ok",
            "task": "poetry",
        },
    )

    assert reply.status_code == 400, reply.text
    message = reply.json()["error"]["message"]
    assert "'poetry'" in message
    assert "code_generation" in message
    assert _samples(http, "llm_router_feedback_total") == {}


def test_unknown_task_with_unknown_id_is_400_not_404(http: httpx.Client) -> None:
    reply = http.post(
        "/v1/feedback",
        json={"request_id": "never-seen", "verdict": "ok", "task": "poetry"},
    )

    assert reply.status_code == 400, reply.text


def test_route_decisions_accept_feedback(http: httpx.Client) -> None:
    decision = http.post(
        "/v1/route",
        json={"model": "auto", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert decision.status_code == 200, decision.text

    reply = http.post(
        "/v1/feedback",
        json={"request_id": decision.headers["x-request-id"], "verdict": "ok"},
    )

    assert reply.status_code == 200, reply.text
    tier = decision.json()["tier"]
    counts = _samples(http, "llm_router_feedback_total")
    assert counts == {(("tier", tier), ("verdict", "ok")): 1.0}


def test_feedback_counts_the_tier_that_answered_after_a_budget_downgrade(
    tmp_path: Path,
) -> None:
    policy = (
        "version: 1\nname: budgets\nproviders:\n  sim:\n    type: simulated\n"
        "tiers:\n"
        "  small:\n    provider: sim\n    model: sim-small\n"
        "    input_usd_per_million: 1\n    output_usd_per_million: 1\n"
        "  medium:\n    provider: sim\n    model: sim-medium\n"
        "    input_usd_per_million: 1\n    output_usd_per_million: 1\n"
        "  large:\n    provider: sim\n    model: sim-large\n"
        "    input_usd_per_million: 1000\n    output_usd_per_million: 1000\n"
        "    daily_budget_usd: 0.01\n"
    )
    forced = {"model": "large", "messages": [{"role": "user", "content": "hi"}]}
    with (
        serve_router(write_policy(tmp_path, policy)) as (url, _),
        httpx.Client(base_url=url, timeout=10) as http,
    ):
        http.post("/v1/chat/completions", json=forced)  # spends the budget
        downgraded = http.post("/v1/chat/completions", json=forced)
        assert downgraded.headers["x-router-tier"] == "medium", downgraded.text

        reply = http.post(
            "/v1/feedback",
            json={"request_id": downgraded.headers["x-request-id"], "verdict": "ok"},
        )
        counts = _samples(http, "llm_router_feedback_total")

    assert reply.status_code == 200, reply.text
    assert counts == {(("tier", "medium"), ("verdict", "ok")): 1.0}


async def test_feedback_memory_forgets_expired_requests_and_stays_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from llm_router import service

    clock = [1000.0]
    monkeypatch.setattr(service.time, "monotonic", lambda: clock[0])
    recent = service.RecentRequests(window_s=60, max_entries=3)
    for i in range(5):
        recent.remember(f"r{i}", "small", "open_qa")

    assert [await recent.find(f"r{i}") is not None for i in range(5)] == [
        False,
        False,
        True,
        True,
        True,
    ]

    clock[0] += 61
    recent.remember("late", "large", "code_generation")

    # The expired requests are gone from memory, not only hidden.
    assert len(recent) == 1
    found = await recent.find("late")
    assert found is not None
    assert found.tier == "large"
