"""Decision microbenchmark: classify plus policy, per classifier, in process.

It times `Router.decide` (turn extraction, classification, policy, metrics)
with the decision cache off, over a mix of distinct prompts, so every call
pays for a full classification. The Triton classifier is measured through the
launcher and latency function in `services/router/triton/` when that exists.
"""

from __future__ import annotations

import importlib
import importlib.util
import time
from dataclasses import dataclass
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
    for messages in conversations[:50]:
        await router.decide(messages)

    times: list[float] = []
    for i in range(samples):
        messages = conversations[i % len(conversations)]
        started = time.perf_counter()
        await router.decide(messages)
        times.append((time.perf_counter() - started) * 1000)
    await built.aclose()
    return DecisionResult(
        classifier,
        samples=samples,
        p50_ms=percentile(times, 50),
        p99_ms=percentile(times, 99),
        note=f"in process, `Router.decide`, cache off, {len(PROMPTS)} prompt kinds",
    )


def measure_triton(samples: int) -> DecisionResult:
    """Decision latency against a real Triton on loopback, if the launcher exists."""
    folder = ROOT / "services" / "router" / "triton"
    if not folder.is_dir():
        return DecisionResult(
            "triton", note="missing: services/router/triton/ does not exist yet"
        )
    candidates = [p for p in folder.glob("*.py") if "bench" in p.stem]
    candidates += [p for p in folder.glob("*.py") if p not in candidates]
    for path in candidates:
        module = _load_module(path)
        if module is None:
            continue
        function = getattr(module, "measure_decision_latency", None) or getattr(
            module, "benchmark_latency", None
        )
        if callable(function):
            return _call_triton_benchmark(function, samples, path.name)
    return DecisionResult(
        "triton",
        note="missing: services/router/triton/ has no latency function "
        "(looked for measure_decision_latency or benchmark_latency)",
    )


def _load_module(path: Any) -> Any:
    spec = importlib.util.spec_from_file_location(f"bench_triton_{path.stem}", path)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception:  # noqa: BLE001 - a broken helper module is reported as missing
        return None
    return module


def _call_triton_benchmark(function: Any, samples: int, where: str) -> DecisionResult:
    try:
        result = function(samples=samples)
    except Exception as exc:  # noqa: BLE001 - reported, not fatal
        return DecisionResult("triton", note=f"failed in {where}: {exc}")
    values = result if isinstance(result, dict) else vars(result)
    p50 = values.get("p50_ms", values.get("p50"))
    p99 = values.get("p99_ms", values.get("p99"))
    return DecisionResult(
        "triton",
        samples=int(values.get("samples", samples)),
        p50_ms=float(p50) if p50 is not None else float("nan"),
        p99_ms=float(p99) if p99 is not None else float("nan"),
        note=f"real Triton on loopback via {where}",
    )
