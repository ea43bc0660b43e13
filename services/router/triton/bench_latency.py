"""Decision latency through Triton on loopback, next to the in-process classifier.

Each decision is `Router.decide` on a router built from settings, with the
decision cache off, so every call classifies: through Triton (classifier
`triton`) or in process (the router's default classifier). Triton is the
repository's model repository on PyTriton's bundled server, started by the
launcher next to this file unless `--triton-url` names a running one.

    uv run python services/router/triton/bench_latency.py
    uv run python services/router/triton/bench_latency.py --concurrency 1 8 32

Other code imports `measure_latency` (one path at one concurrency) or
`run_benchmark` (both paths, Triton started once). The load generator shares
the machine with the server: at high concurrency the figures include queueing
on the same cores.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import numpy as np

from llm_router.service import RouterService
from llm_router.settings import Settings

BenchPath = Literal["triton", "in_process"]

PROMPTS: tuple[str, ...] = (
    "Write a simple FizzBuzz program in Python.",
    "Design a distributed key-value store that tolerates network partitions "
    "and scales to millions of users.",
    "Summarize this in two sentences: the launch moves to May because QA found "
    "four blockers and marketing needs two more weeks.",
    "hey, how are you doing today?",
    "Rewrite this to sound more formal: we can't make it on Friday, sorry.",
    "A train travels 120 km in 1.5 hours. What is its average speed?",
    "Brainstorm ten names for a coffee shop run by robots.",
    "Extract every date mentioned: the contract starts 3 May 2024 and ends "
    "on 2 May 2026, with a review on 1 November 2025.",
    "Classify the sentiment of this review: 'Great battery, awful screen.'",
    "Why is the sky blue?",
    "Write a short poem about autumn in Kyoto.",
    "Implement a thread-safe LRU cache in Rust with unit tests.",
    "According to the passage, who founded the company? Passage: Ada and "
    "Grace founded Compilers Ltd in 1952 in a small office in Leeds.",
    "Prove that the square root of 2 is irrational.",
    "Translate 'good morning' into Japanese.",
    "What are some ways to reduce my electricity bill in winter?",
)


@dataclass(frozen=True, slots=True)
class LatencyResult:
    """Decision latency of one path at one concurrency."""

    path: str
    concurrency: int
    requests: int
    p50_ms: float
    p99_ms: float
    decisions_per_s: float
    fallbacks: int


def load_launcher() -> ModuleType:
    """The launcher module next to this file, importable from anywhere."""
    loaded = sys.modules.get("serve_triton")
    if loaded is not None:
        return loaded
    spec = importlib.util.spec_from_file_location(
        "serve_triton", Path(__file__).resolve().with_name("serve_triton.py")
    )
    if spec is None or spec.loader is None:
        msg = "Cannot load serve_triton.py next to bench_latency.py."
        raise ImportError(msg)
    module = importlib.util.module_from_spec(spec)
    sys.modules["serve_triton"] = module
    spec.loader.exec_module(module)
    return module


def build_settings(
    path: BenchPath, triton_url: str | None = None, protocol: str = "grpc"
) -> Settings:
    """Settings for one path: no decision cache, a patient Triton timeout."""
    values: dict[str, Any] = {"cache_backend": "none", "access_log": False}
    if path == "triton":
        if triton_url is None:
            msg = "The triton path needs triton_url (host:port of a running server)."
            raise ValueError(msg)
        # A long timeout: the benchmark measures Triton, never the fallback.
        values.update(
            classifier="triton",
            triton_url=triton_url,
            triton_protocol=protocol,
            triton_timeout_ms=5_000,
        )
    else:
        values["classifier"] = Settings.model_fields["classifier"].default
    return Settings(**values)


async def measure_latency_async(
    path: BenchPath,
    concurrency: int,
    requests: int = 2_000,
    *,
    triton_url: str | None = None,
    protocol: str = "grpc",
    warmup: int = 200,
) -> LatencyResult:
    """Decision latency of `requests` decisions from `concurrency` workers."""
    service = RouterService.from_settings(build_settings(path, triton_url, protocol))
    router = service.router
    conversations = [[{"role": "user", "content": p}] for p in PROMPTS]
    latencies: list[float] = []
    issued = 0

    async def worker(total: int, record: bool) -> None:
        nonlocal issued
        while issued < total:
            messages = conversations[issued % len(conversations)]
            issued += 1
            started = time.perf_counter()
            await router.decide(messages)
            if record:
                latencies.append(time.perf_counter() - started)

    try:
        await asyncio.gather(*(worker(warmup, False) for _ in range(concurrency)))
        issued = 0
        started = time.perf_counter()
        await asyncio.gather(*(worker(requests, True) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    finally:
        await service.aclose()

    fallbacks = sum(
        sample.value
        for family in service.metrics.registry.collect()
        for sample in family.samples
        if sample.name == "llm_router_classifier_fallbacks_total"
    )
    values_ms = np.asarray(latencies) * 1000
    return LatencyResult(
        path=path if path == "in_process" else f"triton ({protocol})",
        concurrency=concurrency,
        requests=len(latencies),
        p50_ms=float(np.percentile(values_ms, 50)),
        p99_ms=float(np.percentile(values_ms, 99)),
        decisions_per_s=len(latencies) / elapsed,
        fallbacks=int(fallbacks),
    )


def measure_latency(
    path: BenchPath,
    concurrency: int,
    requests: int = 2_000,
    *,
    triton_url: str | None = None,
    protocol: str = "grpc",
) -> LatencyResult:
    """`measure_latency_async` for synchronous callers (its own event loop)."""
    return asyncio.run(
        measure_latency_async(
            path, concurrency, requests, triton_url=triton_url, protocol=protocol
        )
    )


def run_benchmark(
    concurrencies: Sequence[int] = (1, 32),
    requests: int = 2_000,
    *,
    triton_url: str | None = None,
    protocol: str = "grpc",
) -> list[LatencyResult]:
    """Both paths at every concurrency; starts Triton once unless given a URL."""
    results = [measure_latency("in_process", c, requests) for c in concurrencies]
    if triton_url is not None:
        results += [
            measure_latency(
                "triton", c, requests, triton_url=triton_url, protocol=protocol
            )
            for c in concurrencies
        ]
        return results

    launcher = load_launcher()
    with launcher.serve_triton() as server:
        endpoint = (
            server.endpoints.grpc if protocol == "grpc" else server.endpoints.http
        )
        results += [
            measure_latency(
                "triton", c, requests, triton_url=endpoint, protocol=protocol
            )
            for c in concurrencies
        ]
    return results


def format_table(results: Sequence[LatencyResult]) -> str:
    """The results as a Markdown table."""
    lines = [
        "| path | concurrency | decisions | p50 ms | p99 ms | decisions/s "
        "| fallbacks |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.path} | {r.concurrency} | {r.requests} | {r.p50_ms:.3f} | "
            f"{r.p99_ms:.3f} | {r.decisions_per_s:,.0f} | {r.fallbacks} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--protocol", choices=["grpc", "http"], default="grpc")
    parser.add_argument(
        "--triton-url", default=None, help="host:port of a running Triton"
    )
    parser.add_argument("--json", action="store_true", help="print JSON lines")
    args = parser.parse_args(argv)

    results = run_benchmark(
        args.concurrency,
        args.requests,
        triton_url=args.triton_url,
        protocol=args.protocol,
    )
    if args.json:
        for result in results:
            print(json.dumps(asdict(result)))
    else:
        print(format_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
