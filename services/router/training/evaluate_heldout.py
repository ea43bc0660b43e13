"""Score the learned classifier on sources it was not trained on.

Every fold removes whole sources from training and predicts them: MBPP, GSM8K,
groups of P3 datasets (every template of a dataset together), and MMLU
subjects for the complexity score. The out-of-fold predictions are pooled and
scored. Our own evaluation sets (`data/*_eval.jsonl`) are never trained on;
the model trained on everything else predicts them.

    uv run python services/router/training/evaluate_heldout.py [--quick]
        [--no-embedding | --no-tfidf] [--json OUT]

It prints task accuracy and macro-F1 per held-out source and pooled, the share
of code and maths prompts that the default policy sends to the small tier, and
the RouteLLM-style strong share at 95% of strong-only quality on held-out MMLU
subjects and on GSM8K (solution length as the proxy for the weak model
failing: more than 3 reasoning lines).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import trainlib

from llm_router.classifiers.base import TASKS, Classification
from llm_router.evaluation.metrics import score_tasks, strong_curve
from llm_router.policy.loader import load_default_policy
from llm_router.routing.decision import choose_tier

N_FOLDS = 7
GSM8K_WEAK_MAX_STEPS = 3


def build_folds(rows: Sequence[trainlib.Row]) -> list[set[str]]:
    """Held-out groups per fold: MBPP, GSM8K, then P3 datasets; MMLU subjects."""
    p3 = sorted({r.group for r in rows if r.group.startswith("p3:")})
    mmlu = sorted({r.group for r in rows if r.group.startswith("mmlu:")})
    folds: list[set[str]] = [{"mbpp"}, {"gsm8k"}]
    folds += [set(p3[i :: N_FOLDS - 2]) for i in range(N_FOLDS - 2)]
    for i, subject in enumerate(mmlu):
        folds[i % N_FOLDS].add(subject)
    return folds


def tiers_for(
    probabilities: np.ndarray[Any, Any], complexity: np.ndarray[Any, Any]
) -> list[str]:
    """The default policy's tier for each prediction."""
    policy = load_default_policy()
    return [
        choose_tier(policy, Classification(tuple(p.tolist()), float(c)))[0]
        for p, c in zip(probabilities, complexity, strict=True)
    ]


def report_tasks(
    name: str,
    rows: Sequence[trainlib.Row],
    probabilities: np.ndarray[Any, Any],
    complexity: np.ndarray[Any, Any],
) -> dict[str, Any]:
    """Print and return task scores and the code/maths-to-small share."""
    gold = [r.task or "" for r in rows]
    predicted = [TASKS[i] for i in probabilities.argmax(axis=1)]
    scores = score_tasks(gold, predicted, TASKS)
    tiers = tiers_for(probabilities, complexity)
    hard = [t for r, t in zip(rows, tiers, strict=True) if r.task in HARD_TASKS]
    small = sum(t == "small" for t in hard) / len(hard) if hard else float("nan")
    print(
        f"{name:<28} n={len(rows):>5}  accuracy={scores.accuracy:.3f}  "
        f"macro-F1={scores.macro_f1:.3f}  code/maths->small={small:.3f} "
        f"(of {len(hard)})"
    )
    return {
        "n": len(rows),
        "accuracy": scores.accuracy,
        "macro_f1": scores.macro_f1,
        "code_math_to_small": small,
        "per_task_f1": dict(zip(scores.labels, scores.f1, strict=True)),
        "tiers": trainlib.count_by(tiers),
    }


HARD_TASKS = ("code_generation", "math_reasoning")


def _run_folds(
    rows: Sequence[trainlib.Row],
    folds: Sequence[set[str]],
    config: trainlib.Config,
    embedder: Any,
) -> tuple[list[trainlib.Row], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    held_rows: list[trainlib.Row] = []
    held_probabilities, held_complexity = [], []
    started = time.perf_counter()
    for number, held_out in enumerate(folds):
        train = [r for r in rows if r.group not in held_out]
        test = [r for r in rows if r.group in held_out]
        model = trainlib.fit(train, config, embedder)
        probabilities, complexity = model.predict(test)
        held_rows += test
        held_probabilities.append(probabilities)
        held_complexity.append(complexity)
        print(
            f"fold {number}: held out {len(test)} rows from "
            f"{len(held_out)} sources ({time.perf_counter() - started:.0f} s)"
        )
    probabilities = np.vstack(held_probabilities)
    complexity = np.concatenate(held_complexity)
    return held_rows, probabilities, complexity


def _gsm8k_share(complexity: Any, steps: Any) -> str:
    weak = steps <= GSM8K_WEAK_MAX_STEPS
    ones = np.ones_like(weak)
    ours = strong_curve(complexity, weak, ones).share_for(0.95)
    rng = np.random.default_rng(0)
    chance = strong_curve(rng.random(len(steps)), weak, ones).share_for(0.95)
    oracle = strong_curve(steps.astype(float), weak, ones).share_for(0.95)
    ranks = np.argsort(np.argsort(complexity))
    correlation = float(np.corrcoef(ranks, steps)[0, 1])
    return (
        f"{ours:.3f} (random {chance:.3f}, oracle {oracle:.3f}); "
        f"rank correlation with steps {correlation:.3f}"
    )


def _score_gsm8k_dev(
    rows: Sequence[trainlib.Row],
    every: Sequence[trainlib.Row],
    config: trainlib.Config,
    embedder: Any,
) -> int:
    """Rank GSM8K problems unseen in training (same source, other problems)."""

    def is_dev(row: trainlib.Row) -> bool:
        return row.source == "gsm8k_train" and row.extra.get("split") == "dev"

    dev = [r for r in every if is_dev(r)]
    train = [r for r in rows if not is_dev(r)]
    _, complexity = trainlib.fit(train, config, embedder).predict(dev)
    steps = np.asarray([r.extra["solution_steps"] for r in dev])
    print(f"GSM8K dev split n={len(dev)}: {_gsm8k_share(complexity, steps)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run every fold and print the pooled held-out scores."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=trainlib.DEFAULT_SHARED_DIR)
    parser.add_argument("--no-embedding", action="store_true")
    parser.add_argument("--no-tfidf", action="store_true")
    parser.add_argument("--quick", action="store_true", help="first 3 folds only")
    parser.add_argument(
        "--cap", type=int, default=trainlib.DEFAULT_CAP, help="rows per source and task"
    )
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--json", type=Path, help="write the scores here")
    parser.add_argument(
        "--save-predictions", type=Path, help="write out-of-fold predictions (.npz)"
    )
    parser.add_argument(
        "--gsm8k-dev",
        action="store_true",
        help="instead: train without GSM8K's dev split and rank those problems",
    )
    parser.add_argument(
        "--rescore",
        type=Path,
        help="score saved predictions again (e.g. after a policy change), no fitting",
    )
    args = parser.parse_args(argv)

    config = trainlib.Config(
        use_embedding=not args.no_embedding, use_tfidf=not args.no_tfidf
    )
    config = config.with_settings(args.set)
    embedder = trainlib.load_static_table() if config.use_embedding else None
    rows = (
        trainlib.load_shared_rows(args.shared, cap=args.cap)
        + trainlib.load_outcome_rows(args.shared)
        + trainlib.load_own_training()
    )
    evaluation = trainlib.load_own_eval()
    folds = build_folds(rows)
    if args.quick:
        folds = folds[:3]
    print(f"config: {config.to_json()}")

    if args.gsm8k_dev:
        every = trainlib.load_shared_rows(args.shared)
        return _score_gsm8k_dev(rows, every, config, embedder)
    if args.rescore:
        saved = np.load(args.rescore, allow_pickle=False)
        by_id = {r.id: r for r in rows}
        held_rows = [by_id[i] for i in saved["held_ids"].tolist()]
        probabilities, complexity = (
            saved["held_probabilities"],
            saved["held_complexity"],
        )
        eval_probabilities = saved["eval_probabilities"]
        eval_complexity = saved["eval_complexity"]
    else:
        held_rows, probabilities, complexity = _run_folds(rows, folds, config, embedder)
        full = trainlib.fit(rows, config, embedder)
        eval_probabilities, eval_complexity = full.predict(evaluation)
    if args.save_predictions:
        np.savez_compressed(
            args.save_predictions,
            held_ids=np.asarray([r.id for r in held_rows]),
            held_probabilities=probabilities,
            held_complexity=complexity,
            eval_probabilities=eval_probabilities,
            eval_complexity=eval_complexity,
        )

    results: dict[str, Any] = {"config": config.to_json()}
    print("\nTask scores on held-out sources (model never saw the source):")
    tasked = np.asarray([r.task is not None for r in held_rows])
    task_rows = [r for r in held_rows if r.task is not None]
    for source in sorted({r.group.split(":")[0] for r in task_rows}):
        mask = np.asarray(
            [r.task is not None and r.group.split(":")[0] == source for r in held_rows]
        )
        subset = [r for r, m in zip(held_rows, mask, strict=True) if m]
        results[source] = report_tasks(
            source, subset, probabilities[mask], complexity[mask]
        )
    results["pooled"] = report_tasks(
        "pooled held-out sources", task_rows, probabilities[tasked], complexity[tasked]
    )

    print("\nComplexity on held-out sources (strong share at 95% of strong-only):")
    mmlu = np.asarray([r.source == "mmlu" for r in held_rows])
    if mmlu.any():
        mmlu_rows = [r for r, m in zip(held_rows, mmlu, strict=True) if m]
        curve = strong_curve(
            complexity[mmlu],
            [r.extra["weak_correct"] for r in mmlu_rows],
            [r.extra["strong_correct"] for r in mmlu_rows],
        )
        results["mmlu_strong_share"] = curve.share_for(0.95)
        print(
            f"MMLU held-out subjects n={len(mmlu_rows)}: "
            f"{curve.share_for(0.95):.3f} (random ~0.68)"
        )
    gsm = np.asarray([r.source == "gsm8k_train" for r in held_rows])
    if gsm.any():
        steps = np.asarray(
            [
                r.extra["solution_steps"]
                for r, m in zip(held_rows, gsm, strict=True)
                if m
            ]
        )
        weak = steps <= GSM8K_WEAK_MAX_STEPS
        curve = strong_curve(complexity[gsm], weak, np.ones_like(weak))
        random_share = strong_curve(
            np.random.default_rng(0).random(len(steps)), weak, np.ones_like(weak)
        ).share_for(0.95)
        oracle = strong_curve(steps.astype(float), weak, np.ones_like(weak))
        correlation = float(
            np.corrcoef(np.argsort(np.argsort(complexity[gsm])), steps)[0, 1]
        )
        results["gsm8k_strong_share"] = curve.share_for(0.95)
        print(
            f"GSM8K (held out, steps>{GSM8K_WEAK_MAX_STEPS} = weak fails) "
            f"n={len(steps)}: {curve.share_for(0.95):.3f} "
            f"(random {random_share:.3f}, oracle {oracle.share_for(0.95):.3f}); "
            f"rank correlation with steps {correlation:.3f}"
        )

    print("\nOur own evaluation sets (written apart from training, never trained on):")
    for name in trainlib.OWN_EVAL:
        mask = np.asarray([r.source == name for r in evaluation])
        subset = [r for r in evaluation if r.source == name]
        results[name] = report_tasks(
            name, subset, eval_probabilities[mask], eval_complexity[mask]
        )
    results["own_eval"] = report_tasks(
        "own evaluation sets", evaluation, eval_probabilities, eval_complexity
    )
    for row, p in zip(evaluation, eval_probabilities, strict=True):
        predicted = TASKS[int(p.argmax())]
        if predicted != row.task:
            text = row.text[:70].replace("\n", " ")
            print(f"  {row.task:>16} -> {predicted:<16} {text}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
