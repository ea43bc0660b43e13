"""Measure the learned classifier: load time and decision latency, in process.

    uv run python services/router/training/bench_latency.py [--rounds 20]

A decision is what the router does per turn: `classify` plus the policy
(`choose_tier`). Prompts are our own evaluation sets plus long
templated prompts from the shared data (up to the feature cut of ~1,900
characters and beyond), each decided once per round after a warm-up. Reports
p50, p99 and max in milliseconds, and `classify_many` throughput.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import trainlib

from llm_router.classifiers.base import Turn
from llm_router.classifiers.learned import LearnedClassifier
from llm_router.policy.loader import load_default_policy
from llm_router.routing.decision import choose_tier


def _prompts(shared: Path) -> list[Turn]:
    turns = [Turn(r.text, r.context) for r in trainlib.load_own_eval()]
    path = shared / "train_dev.jsonl"
    if path.exists():
        with path.open(encoding="utf-8") as handle:
            rows = [
                json.loads(line) for _, line in zip(range(4000), handle, strict=False)
            ]
        longest = sorted(rows, key=lambda r: len(r["text"]), reverse=True)[:100]
        turns += [Turn(r["text"]) for r in longest]
    return turns


def main(argv: Sequence[str] | None = None) -> int:
    """Print load time, decision latency percentiles and batch throughput."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--shared", type=Path, default=trainlib.DEFAULT_SHARED_DIR)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    classifier = LearnedClassifier.from_artifact()
    load_s = time.perf_counter() - started
    policy = load_default_policy()
    turns = _prompts(args.shared)
    for turn in turns:  # warm-up: caches, allocator, branch predictors
        choose_tier(policy, classifier.classify(turn))

    samples: list[float] = []
    by_kind: dict[str, list[float]] = {"chat (own eval sets)": [], "long templated": []}
    n_chat = len(trainlib.load_own_eval())
    gc.disable()
    for _ in range(args.rounds):
        for position, turn in enumerate(turns):
            begin = time.perf_counter()
            choose_tier(policy, classifier.classify(turn))
            elapsed = (time.perf_counter() - begin) * 1000
            samples.append(elapsed)
            kind = "chat (own eval sets)" if position < n_chat else "long templated"
            by_kind[kind].append(elapsed)
    gc.enable()
    samples.sort()
    p99 = samples[int(0.99 * (len(samples) - 1))]

    batch = turns * 10
    begin = time.perf_counter()
    classifier.classify_many(batch)
    batch_s = time.perf_counter() - begin

    chars = [len(t.text) for t in turns]
    print(f"load: {load_s * 1000:.0f} ms")
    print(
        f"decisions: {len(samples)} ({len(turns)} prompts x {args.rounds} rounds, "
        f"{min(chars)}-{max(chars)} chars)"
    )
    print(
        f"decision latency ms: p50 {statistics.median(samples):.3f}  "
        f"p99 {p99:.3f}  max {samples[-1]:.3f}"
    )
    for kind, values in by_kind.items():
        if values:
            values.sort()
            print(
                f"  {kind:<20} n={len(values):>5}  p50 {statistics.median(values):.3f}"
                f"  p99 {values[int(0.99 * (len(values) - 1))]:.3f}"
            )
    print(f"classify_many: {len(batch) / batch_s:.0f} prompts/s ({len(batch)} prompts)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
