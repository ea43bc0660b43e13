"""Decision microbenchmark: classify plus policy, per classifier, in process.

It times `Router.decide` (turn extraction, classification, policy, metrics)
with the decision cache off, over a mix of distinct prompts, so every call
pays for a full classification. The Triton classifier is measured through the
launcher and latency function in `services/router/triton/` when that exists.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.loadgen import percentile
from bench.processes import ROOT

PROMPTS = (
    "Write a Python function that returns the n-th Fibonacci number iteratively.",
    "Summarise this paragraph in one sentence: the quarterly results beat "
    "expectations on revenue but margins fell because of higher freight costs.",
    "What is the capital of Australia?",
    "Rewrite this sentence to sound more formal: we gotta ship this by Friday.",
    "Design a multi-region, highly available distributed key-value store with "
    "strong consistency, explain the consensus protocol and the failure modes.",
    "Brainstorm ten names for a coffee shop that also sells books.",
    "Solve for x: 3x^2 - 12x + 9 = 0 and show each step.",
    "Classify the sentiment of this review as positive or negative: the battery "
    "died after two days.",
    "Extract every date and amount from: paid $120 on 2024-03-02 and $80 on "
    "2024-04-11.",
    "hi there, how are you doing today?",
    "Write a short story about a lighthouse keeper who finds a message in a "
    "bottle, in about 300 words.",
    "Given the text above, who signed the treaty and in which year?",
)


@dataclass
class DecisionResult:
    """Decision latency of one classifier, or why it could not be measured."""

    classifier: str
    samples: int = 0
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")
    # CPU time of the deciding thread: what the decision costs, without the
    # time a shared machine's scheduler keeps the process off the cores.
    cpu_p50_ms: float = float("nan")
    cpu_p99_ms: float = float("nan")
    note: str = ""


async def measure_in_process(classifier: str, samples: int) -> DecisionResult:
    """Time `samples` decisions with the named in-process classifier."""
    from llm_router.classifiers.factory import build_classifier
    from llm_router.policy.loader import load_default_policy
    from llm_router.routing.router import Router
    from llm_router.settings import Settings
    from llm_router.telemetry.metrics import Metrics

    settings = Settings(_env_file=None, classifier=classifier, cache_backend="none")  # type: ignore[call-arg,arg-type]
    try:
        built = build_classifier(settings)
    except Exception as exc:  # noqa: BLE001 - reported, not fatal
        return DecisionResult(classifier, note=f"not available: {exc}")
    router = Router(load_default_policy(), built, Metrics(), cache=None)
    conversations = [
        [{"role": "user", "content": f"{prompt} (variant {i})"}]
        for i in range(64)
        for prompt in PROMPTS
    ]
    times: list[float] = []
    cpu: list[float] = []
    try:
        for messages in conversations[:50]:
            await router.decide(messages)
        for i in range(samples):
            messages = conversations[i % len(conversations)]
            started, started_cpu = time.perf_counter(), time.thread_time()
            await router.decide(messages)
            cpu.append((time.thread_time() - started_cpu) * 1000)
            times.append((time.perf_counter() - started) * 1000)
    except Exception as exc:  # noqa: BLE001 - reported, not fatal
        await built.aclose()
        return DecisionResult(classifier, note=f"failed: {type(exc).__name__}: {exc}")
    await built.aclose()
    return DecisionResult(
        classifier,
        samples=samples,
        p50_ms=percentile(times, 50),
        p99_ms=percentile(times, 99),
        cpu_p50_ms=percentile(cpu, 50),
        cpu_p99_ms=percentile(cpu, 99),
        note=f"in process, `Router.decide`, cache off, {len(PROMPTS)} prompt kinds",
    )


def measure_triton(
    samples: int, concurrencies: Sequence[int] = (1, 32)
) -> list[DecisionResult]:
    """Decision latency through a real Triton on loopback (gRPC).

    It calls `run_benchmark` of `services/router/triton/bench_latency.py`, which
    starts PyTriton's bundled server with the repository's model and times
    `Router.decide` with classifier `triton` and the cache off, at each
    concurrency (concurrent decisions are what dynamic batching is for).
    """
    path = ROOT / "services" / "router" / "triton" / "bench_latency.py"
    if not path.exists():
        return [DecisionResult("triton", note=f"missing: {path.relative_to(ROOT)}")]
    try:
        module = _load_module(path)
    except Exception as exc:  # noqa: BLE001 - reported, not fatal
        return [DecisionResult("triton", note=f"cannot import {path.name}: {exc}")]
    function = getattr(module, "run_benchmark", None)
    if not callable(function):
        note = f"missing: {path.name} has no run_benchmark function"
        return [DecisionResult("triton", note=note)]
    try:
        results = function(tuple(concurrencies), samples)
    except Exception as exc:  # noqa: BLE001 - reported, not fatal
        note = f"failed: {type(exc).__name__}: {exc}"
        return [DecisionResult("triton", note=note)]
    remote = [r for r in results if str(r.path).startswith("triton")]
    if not remote:
        return [DecisionResult("triton", note=f"{path.name} returned no triton row")]
    measured = []
    for found in remote:
        note = (
            f"real Triton (PyTriton) on loopback, {found.path}, "
            f"{found.concurrency} concurrent, via {path.name}"
        )
        if found.fallbacks:
            note += f"; {found.fallbacks} decisions fell back in process"
        name = "triton" if found.concurrency == 1 else f"triton (c={found.concurrency})"
        measured.append(
            DecisionResult(
                name,
                samples=int(found.requests),
                p50_ms=float(found.p50_ms),
                p99_ms=float(found.p99_ms),
                note=note,
            )
        )
    return measured


def _load_module(path: Path) -> Any:
    """Import a helper script by path; registered first, as dataclasses need."""
    import sys

    name = f"bench_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        msg = f"Cannot import {path}."
        raise ImportError(msg)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
