"""The Triton model repository on a real Triton server, called by the router side.

One `tritonserver` (PyTriton's bundled 2.51, on the CPU) serves the repository's
own `model_repository/` for the whole module, started by the repository's
launcher. `triton_parity_prompts.jsonl` holds the parity prompts: GSM8K (MIT)
and MBPP (CC-BY-4.0) rows sampled from the shared training data, plus prompts
written for this repository (chat requests, passages, follow-ups with context,
non-Latin text, a 5,000-character prompt).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tritonclient.grpc.aio as grpc_client
import tritonclient.http as http_client
from triton_helpers import (
    TRITON_DIR,
    fallback_count,
    in_process_classifier,
    load_triton_script,
    triton_classifier,
)
from tritonclient.utils import InferenceServerException

from llm_router.classifiers.base import TASKS, Classification, Turn
from llm_router.classifiers.triton import (
    COMPLEXITY_OUTPUT,
    CONTEXT_INPUT,
    PROBABILITIES_OUTPUT,
    TEXT_INPUT,
    TritonClassifier,
)
from llm_router.telemetry.metrics import Metrics

pytestmark = pytest.mark.slow

PROMPTS = Path(__file__).with_name("triton_parity_prompts.jsonl")
# Generous: the parity and batching tests must measure Triton, never the
# fallback, on two cores shared with other work.
PATIENT_TIMEOUT_MS = 10_000.0


def read_turns() -> list[Turn]:
    rows = [json.loads(line) for line in PROMPTS.read_text("utf-8").splitlines()]
    return [Turn(text=row["text"], context=row["context"]) for row in rows]


def patient_classifier(
    endpoint: str, metrics: Metrics, **overrides: Any
) -> TritonClassifier:
    """A `triton` classifier that waits long enough to measure Triton itself."""
    return triton_classifier(
        endpoint, metrics, triton_timeout_ms=PATIENT_TIMEOUT_MS, **overrides
    )


def assert_same(
    remote: Classification, local: Classification, turn: Turn, where: str
) -> None:
    label = f"{where}: {turn.text[:60]!r}"
    assert remote.task == local.task, label
    assert abs(remote.complexity - local.complexity) <= 1e-6, label
    assert np.allclose(remote.probabilities, local.probabilities, atol=1e-6), label


def model_statistics(triton: Any) -> dict[str, Any]:
    with http_client.InferenceServerClient(triton.endpoints.http) as client:
        stats: dict[str, Any] = client.get_inference_statistics("task_classifier")
    return stats["model_stats"][0]


def test_launcher_serves_the_repository_model_on_loopback(triton: Any) -> None:
    with http_client.InferenceServerClient(triton.endpoints.http) as client:
        config = client.get_model_config("task_classifier")
        repository = client.get_model_repository_index()

    assert triton.model_repository == (TRITON_DIR / "model_repository").resolve()
    assert [entry["name"] for entry in repository] == ["task_classifier"]
    assert config["backend"] == "python"
    assert "dynamic_batching" in config, config
    assert [i["name"] for i in config["input"]] == [TEXT_INPUT, CONTEXT_INPUT]
    assert [o["name"] for o in config["output"]] == [
        PROBABILITIES_OUTPUT,
        COMPLEXITY_OUTPUT,
    ]
    assert [o["dims"] for o in config["output"]] == [[len(TASKS)], [1]]
    for endpoint in (triton.endpoints.http, triton.endpoints.grpc):
        assert endpoint.startswith("127.0.0.1:"), endpoint


async def test_triton_matches_the_in_process_classifier_on_every_prompt(
    triton: Any,
) -> None:
    turns = read_turns()
    metrics = Metrics()
    classifier = patient_classifier(triton.endpoints.grpc, metrics)
    local = in_process_classifier()

    try:
        remote = [await classifier.aclassify(turn) for turn in turns]
    finally:
        await classifier.aclose()

    assert len(turns) >= 200
    assert sum(fallback_count(metrics, r) for r in ("unavailable", "timeout")) == 0
    assert fallback_count(metrics, "error") == 0
    for turn, result in zip(turns, remote, strict=True):
        assert_same(result, local.classify(turn), turn, "grpc")


async def test_http_protocol_gives_the_same_answers(triton: Any) -> None:
    turns = read_turns()[::10]
    metrics = Metrics()
    classifier = patient_classifier(
        triton.endpoints.http, metrics, triton_protocol="http"
    )
    local = in_process_classifier()

    try:
        remote = [await classifier.aclassify(turn) for turn in turns]
    finally:
        await classifier.aclose()

    assert fallback_count(metrics, "error") == 0
    assert fallback_count(metrics, "unavailable") == 0
    for turn, result in zip(turns, remote, strict=True):
        assert_same(result, local.classify(turn), turn, "http")


async def test_concurrent_requests_are_batched_by_the_server(triton: Any) -> None:
    turns = read_turns()[:96]
    metrics = Metrics()
    classifier = patient_classifier(triton.endpoints.grpc, metrics)
    local = in_process_classifier()
    before = model_statistics(triton)

    try:
        remote = await asyncio.gather(*(classifier.aclassify(t) for t in turns))
    finally:
        await classifier.aclose()

    after = model_statistics(triton)
    inferences = int(after["inference_count"]) - int(before["inference_count"])
    executions = int(after["execution_count"]) - int(before["execution_count"])
    batch_sizes = {int(s["batch_size"]) for s in after["batch_stats"]}
    assert fallback_count(metrics, "error") == 0
    assert inferences == len(turns), after
    assert executions < inferences, (executions, inferences)
    assert max(batch_sizes) > 1, batch_sizes
    for turn, result in zip(turns, remote, strict=True):
        assert_same(result, local.classify(turn), turn, "batched")


async def test_a_request_with_several_rows_gets_one_answer_per_row(
    triton: Any,
) -> None:
    turns = read_turns()[:5]
    text = grpc_client.InferInput("TEXT", [len(turns), 1], "BYTES")
    text.set_data_from_numpy(
        np.array([[t.text.encode()] for t in turns], dtype=np.object_)
    )
    local = in_process_classifier()

    async with grpc_client.InferenceServerClient(triton.endpoints.grpc) as client:
        response = await client.infer("task_classifier", [text])

    probabilities = response.as_numpy("TASK_PROBABILITIES")
    complexity = response.as_numpy("COMPLEXITY")
    assert probabilities.shape == (len(turns), len(TASKS))
    for i, turn in enumerate(turns):
        expected = local.classify(turn)
        assert TASKS[int(probabilities[i].argmax())] == expected.task
        assert abs(float(complexity[i][0]) - expected.complexity) <= 1e-6


async def test_mismatched_context_rows_get_a_clear_error(triton: Any) -> None:
    text = grpc_client.InferInput("TEXT", [1, 1], "BYTES")
    text.set_data_from_numpy(np.array([[b"hello"]], dtype=np.object_))
    context = grpc_client.InferInput("CONTEXT", [1, 2], "BYTES")
    context.set_data_from_numpy(np.array([[b"a", b"b"]], dtype=np.object_))

    async with grpc_client.InferenceServerClient(triton.endpoints.grpc) as client:
        with pytest.raises(InferenceServerException) as caught:
            await client.infer("task_classifier", [text, context])

    assert "CONTEXT" in str(caught.value), caught.value


async def test_triton_errors_fall_back_and_are_counted_as_error(
    triton: Any,
) -> None:
    metrics = Metrics()
    classifier = patient_classifier(
        triton.endpoints.grpc, metrics, triton_model="no_such_model"
    )
    turn = Turn("Summarize the meeting notes in three bullet points.")

    try:
        result = await classifier.aclassify(turn)
    finally:
        await classifier.aclose()

    assert result == in_process_classifier().classify(turn)
    assert fallback_count(metrics, "error") == 1


async def test_ready_reports_the_model_ready(triton: Any) -> None:
    classifier = patient_classifier(triton.endpoints.grpc, Metrics())

    try:
        assert await classifier.ready()
    finally:
        await classifier.aclose()


async def test_latency_benchmark_measures_triton_without_fallbacks(
    triton: Any,
) -> None:
    bench = load_triton_script("bench_latency")

    result = await bench.measure_latency_async(
        "triton", 4, 40, triton_url=triton.endpoints.grpc, warmup=8
    )

    assert result.requests == 40
    assert result.fallbacks == 0
    assert 0 < result.p50_ms <= result.p99_ms
    assert "| triton (grpc) | 4 | 40 |" in bench.format_table([result])
