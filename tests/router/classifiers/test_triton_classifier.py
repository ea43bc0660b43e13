"""The `triton` classifier when Triton is unreachable or silent (no server needed).

The failing Tritons here are real sockets: a port nothing listens on (the
connection is refused) and a listener that accepts connections and never
answers (the call times out). The real server is in `test_triton_server.py`.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import httpx
import openai
import pytest
from triton_helpers import fallback_count, in_process_classifier, triton_classifier

from helpers import LOOPBACK, make_settings, serve_router
from llm_router.classifiers.base import Turn
from llm_router.classifiers.factory import build_classifier
from llm_router.classifiers.triton import TritonClassifier
from llm_router.telemetry.metrics import Metrics

TURN = Turn("Write a simple FizzBuzz program in Python.")


@pytest.fixture
def refused_url() -> Iterator[str]:
    """A loopback port held (so nobody else takes it) but not listening."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        yield f"{LOOPBACK}:{sock.getsockname()[1]}"


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A listener whose connections complete (in the kernel) but never answer."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        sock.listen(64)
        yield f"{LOOPBACK}:{sock.getsockname()[1]}"


def test_factory_builds_triton_with_the_default_in_process_fallback() -> None:
    classifier = build_classifier(make_settings(classifier="triton"))

    assert isinstance(classifier, TritonClassifier)
    assert classifier.fallback.name == in_process_classifier().name
    assert classifier.fallback.name != "triton"
    assert classifier.timeout_s == pytest.approx(0.05)


@pytest.mark.parametrize("protocol", ["grpc", "http"])
async def test_refused_connection_falls_back_with_the_same_answer(
    refused_url: str, protocol: str
) -> None:
    metrics = Metrics()
    classifier = triton_classifier(refused_url, metrics, triton_protocol=protocol)

    try:
        result = await classifier.aclassify(TURN)
    finally:
        await classifier.aclose()

    assert result == in_process_classifier().classify(TURN)
    assert fallback_count(metrics, "unavailable") == 1


@pytest.mark.parametrize("protocol", ["grpc", "http"])
async def test_silent_server_costs_one_timeout_then_triton_is_skipped(
    silent_url: str, protocol: str
) -> None:
    metrics = Metrics()
    classifier = triton_classifier(
        silent_url, metrics, triton_protocol=protocol, triton_timeout_ms=300
    )

    try:
        started = time.perf_counter()
        first = await classifier.aclassify(TURN)
        first_s = time.perf_counter() - started
        started = time.perf_counter()
        second = await classifier.aclassify(TURN)
        second_s = time.perf_counter() - started
    finally:
        await classifier.aclose()

    assert first == second == in_process_classifier().classify(TURN)
    assert 0.3 <= first_s < 3.0, first_s
    assert second_s < 0.3, second_s  # no timeout paid: Triton was skipped
    assert fallback_count(metrics, "timeout") == 1
    assert fallback_count(metrics, "backoff") == 1


async def test_triton_is_tried_again_when_the_backoff_ends(refused_url: str) -> None:
    metrics = Metrics()
    classifier = triton_classifier(
        refused_url, metrics, triton_backoff_s=0.2, triton_backoff_max_s=0.2
    )

    try:
        await classifier.aclassify(TURN)
        await classifier.aclassify(TURN)
        await asyncio.sleep(0.25)
        await classifier.aclassify(TURN)
    finally:
        await classifier.aclose()

    assert fallback_count(metrics, "unavailable") == 2
    assert fallback_count(metrics, "backoff") == 1


async def test_backoff_doubles_with_consecutive_failures_up_to_the_cap(
    refused_url: str,
) -> None:
    classifier = triton_classifier(
        refused_url, Metrics(), triton_backoff_s=1.0, triton_backoff_max_s=3.0
    )
    pauses = []

    try:
        for _ in range(4):
            classifier._skip_until = 0.0  # let every call reach Triton
            before = time.monotonic()
            await classifier.aclassify(TURN)
            pauses.append(round(classifier._skip_until - before))
    finally:
        await classifier.aclose()

    assert pauses == [1, 2, 3, 3]


async def test_ready_is_false_when_triton_is_unreachable(refused_url: str) -> None:
    classifier = triton_classifier(refused_url, Metrics())

    try:
        assert not await classifier.ready()
    finally:
        await classifier.aclose()


def test_sync_classify_uses_the_in_process_classifier(refused_url: str) -> None:
    classifier = triton_classifier(refused_url, Metrics())

    assert classifier.classify(TURN) == in_process_classifier().classify(TURN)


def test_router_with_unreachable_triton_stays_ready_and_answers(
    refused_url: str,
) -> None:
    with (
        serve_router(classifier="triton", triton_url=refused_url) as (url, _),
        httpx.Client(base_url=url) as http,
        openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0) as sdk,
    ):
        ready = http.get("/readyz")
        completion = sdk.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": TURN.text}]
        )
        metrics = http.get("/metrics").text

    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["classifier"] == "triton"
    assert body["classifier_reachable"] is False
    assert body["classifier_ready"] is True
    assert body["classifier_fallback"] == in_process_classifier().name
    assert completion.http_response.status_code == 200
    assert (
        completion.headers["x-router-task"]
        == in_process_classifier().classify(TURN).task
    )
    assert (
        'llm_router_classifier_fallbacks_total{classifier="triton",'
        'reason="unavailable"} 1.0' in metrics
    ), metrics
