"""`llm-router eval`: score the classifier and the policy on a labelled file.

Input rows are JSON objects with `id` and `text` (optional `context`), a gold
`task` for the task scores, and with `--outcomes` the booleans `weak_correct`
and `strong_correct`. Costs use the policy's prices, each row's
`input_tokens`/`output_tokens` when present, else an estimate (four characters
per input token and a fixed completion length).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from llm_router.classifiers.base import TASKS, Classifier, Turn
from llm_router.errors import ConfigError
from llm_router.evaluation.metrics import (
    StrongCurve,
    TaskScores,
    score_tasks,
    strong_curve,
)
from llm_router.policy.schema import Policy
from llm_router.routing.decision import choose_tier

CHARS_PER_TOKEN = 4
DEFAULT_OUTPUT_TOKENS = 300


@dataclass(frozen=True)
class Evaluation:
    """Everything `llm-router eval` reports about one file."""

    n: int
    tasks: TaskScores | None
    tiers: dict[str, int]
    cost_usd: float
    all_large_cost_usd: float
    largest_tier: str
    curve: StrongCurve | None
    curve_costs: list[tuple[float, float]]
    policy_strong_share: float

    @property
    def relative_cost(self) -> float:
        """Routed cost as a share of sending everything to the largest tier."""
        return (
            self.cost_usd / self.all_large_cost_usd if self.all_large_cost_usd else 0.0
        )


def evaluate(
    rows: Sequence[dict[str, Any]],
    classifier: Classifier,
    policy: Policy,
    *,
    outcomes: bool = False,
    output_tokens: int = DEFAULT_OUTPUT_TOKENS,
) -> Evaluation:
    """Classify every row, route it under `policy`, and score the result."""
    if not rows:
        msg = (
            "The evaluation file has no rows; give it JSON lines with `id` and `text`."
        )
        raise ConfigError(msg)
    has_gold = any("task" in row for row in rows)
    if has_gold:
        _check_gold(rows)
    if outcomes:
        _check_outcomes(rows)
    turns = [Turn(row["text"], row.get("context") or "") for row in rows]
    results = classifier.classify_many(turns)
    tiers = [choose_tier(policy, result)[0] for result in results]

    task_scores = None
    if has_gold:
        task_scores = score_tasks(
            [row["task"] for row in rows], [r.task for r in results], TASKS
        )
    largest = policy.tier_names[-1]
    tokens = [_tokens(row, output_tokens) for row in rows]
    cost = sum(
        policy.tiers[tier].cost_usd(*t) for tier, t in zip(tiers, tokens, strict=True)
    )
    all_large = sum(policy.tiers[largest].cost_usd(*t) for t in tokens)
    complexity = np.asarray([r.complexity for r in results])

    curve = None
    if outcomes:
        curve = strong_curve(
            complexity,
            [bool(row["weak_correct"]) for row in rows],
            [bool(row["strong_correct"]) for row in rows],
        )
    return Evaluation(
        n=len(rows),
        tasks=task_scores,
        tiers=dict(Counter(tiers)),
        cost_usd=cost,
        all_large_cost_usd=all_large,
        largest_tier=largest,
        curve=curve,
        curve_costs=_cost_curve(policy, complexity, tokens),
        policy_strong_share=sum(t == largest for t in tiers) / len(tiers),
    )


def format_report(evaluation: Evaluation, policy: Policy) -> str:
    """The human-readable report `llm-router eval` prints."""
    lines = [f"rows: {evaluation.n}"]
    scores = evaluation.tasks
    if scores is not None:
        lines += [
            f"accuracy: {scores.accuracy:.4f}",
            f"macro-F1: {scores.macro_f1:.4f} (over the tasks present in the file)",
            "",
            f"{'task':<16} {'precision':>9} {'recall':>7} {'f1':>7} {'support':>8}",
        ]
        for i, label in enumerate(scores.labels):
            lines.append(
                f"{label:<16} {scores.precision[i]:>9.3f} {scores.recall[i]:>7.3f} "
                f"{scores.f1[i]:>7.3f} {scores.support[i]:>8}"
            )
        lines += ["", "confusion matrix (rows: gold task, columns: predicted task)"]
        short = [label[:6] for label in scores.labels]
        lines.append(" " * 16 + "".join(f"{s:>7}" for s in short))
        for label, counts in zip(scores.labels, scores.confusion, strict=True):
            lines.append(f"{label:<16}" + "".join(f"{c:>7}" for c in counts))
    lines += ["", "tier distribution"]
    for tier in policy.tier_names:
        count = evaluation.tiers.get(tier, 0)
        lines.append(f"  {tier:<10} {count:>7} ({count / evaluation.n:.1%})")
    lines += [
        "",
        f"estimated cost: ${evaluation.cost_usd:.4f} routed vs "
        f"${evaluation.all_large_cost_usd:.4f} all-{evaluation.largest_tier} "
        f"({evaluation.relative_cost:.1%} of it, saving "
        f"{1 - evaluation.relative_cost:.1%})",
    ]
    curve = evaluation.curve
    if curve is not None:
        lines += [
            "",
            "outcomes (RouteLLM-style: top complexity share goes to the strong model)",
            f"  weak-only accuracy {curve.weak_accuracy:.4f}, strong-only "
            f"{curve.strong_accuracy:.4f}",
        ]
        for fraction in (0.8, 0.9, 0.95):
            lines.append(
                f"  strong share for {fraction:.0%} of strong-only quality: "
                f"{curve.share_for(fraction):.3f}"
            )
        index = round(evaluation.policy_strong_share * evaluation.n)
        lines.append(
            f"  this policy sends {evaluation.policy_strong_share:.1%} to "
            f"{evaluation.largest_tier}: quality {curve.quality[index]:.4f}"
        )
    return "\n".join(lines)


def _cost_curve(
    policy: Policy, complexity: np.ndarray[Any, Any], tokens: list[tuple[int, int]]
) -> list[tuple[float, float]]:
    """(strong share, cost relative to all-large) as the top share goes large.

    The rest go to the cheapest tier: the two ends of any policy's trade-off.
    """
    largest, cheapest = (
        policy.tiers[policy.tier_names[-1]],
        policy.tiers[policy.tier_names[0]],
    )
    large_cost = np.asarray([largest.cost_usd(*t) for t in tokens])
    small_cost = np.asarray([cheapest.cost_usd(*t) for t in tokens])
    order = np.argsort(-complexity, kind="stable")
    total_large = float(large_cost.sum()) or 1.0
    gained = np.concatenate([[0.0], np.cumsum(large_cost[order] - small_cost[order])])
    costs = (small_cost.sum() + gained) / total_large
    n = len(tokens)
    return [(i / n, float(costs[i])) for i in range(n + 1)]


def _tokens(row: dict[str, Any], output_tokens: int) -> tuple[int, int]:
    text = row["text"] + (row.get("context") or "")
    input_tokens = row.get("input_tokens")
    output = row.get("output_tokens")
    return (
        int(input_tokens) if isinstance(input_tokens, int) else max(1, len(text) // 4),
        int(output) if isinstance(output, int) else output_tokens,
    )


def _check_gold(rows: Sequence[dict[str, Any]]) -> None:
    for row in rows:
        task = row.get("task")
        if task not in TASKS:
            msg = (
                f"Row {row.get('id')!r} has gold task {task!r}. Give every row a "
                f"`task`, one of: {', '.join(TASKS)}."
            )
            raise ConfigError(msg)


def _check_outcomes(rows: Sequence[dict[str, Any]]) -> None:
    for row in rows:
        for key in ("weak_correct", "strong_correct"):
            if not isinstance(row.get(key), bool):
                msg = (
                    f"Row {row.get('id')!r} has {key}={row.get(key)!r}; --outcomes "
                    "needs booleans `weak_correct` and `strong_correct` on every row."
                )
                raise ConfigError(msg)


def save_plots(evaluation: Evaluation, directory: Path) -> list[Path]:
    """Write the confusion-matrix and cost/quality PNGs; returns their paths."""
    from llm_router.evaluation.plots import plot_confusion, plot_cost_quality

    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    if evaluation.tasks is not None:
        paths.append(plot_confusion(evaluation.tasks, directory / "confusion.png"))
    paths.append(plot_cost_quality(evaluation, directory / "cost_quality.png"))
    return paths
