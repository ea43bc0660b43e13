"""Scores for a classifier and a router: task metrics and cost/quality curves.

Plain numpy so the training scripts, `llm-router eval` and tests share one
definition of every number they report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class TaskScores:
    """Accuracy, macro-F1 and per-task precision/recall/F1 with a confusion matrix.

    `labels` are the tasks present in the gold labels or the predictions;
    `confusion[i][j]` counts gold `labels[i]` predicted as `labels[j]`.
    Macro-F1 averages over the tasks present in the gold labels.
    """

    accuracy: float
    macro_f1: float
    labels: list[str]
    precision: list[float]
    recall: list[float]
    f1: list[float]
    support: list[int]
    confusion: list[list[int]]


def score_tasks(
    gold: Sequence[str], predicted: Sequence[str], order: Sequence[str]
) -> TaskScores:
    """Compare predicted tasks with gold ones; `order` fixes the label order."""
    if len(gold) != len(predicted):
        msg = f"Got {len(gold)} gold labels but {len(predicted)} predictions."
        raise ValueError(msg)
    present = set(gold) | set(predicted)
    labels = [task for task in order if task in present]
    labels += sorted(present - set(labels))
    position = {label: i for i, label in enumerate(labels)}
    confusion = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for g, p in zip(gold, predicted, strict=True):
        confusion[position[g], position[p]] += 1

    true_positive = np.diag(confusion).astype(np.float64)
    predicted_count = confusion.sum(axis=0)
    support = confusion.sum(axis=1)
    precision = np.divide(
        true_positive,
        predicted_count,
        out=np.zeros_like(true_positive),
        where=predicted_count > 0,
    )
    recall = np.divide(
        true_positive, support, out=np.zeros_like(true_positive), where=support > 0
    )
    total = precision + recall
    f1 = np.divide(
        2 * precision * recall, total, out=np.zeros_like(total), where=total > 0
    )
    in_gold = support > 0
    return TaskScores(
        accuracy=float(true_positive.sum() / max(1, len(gold))),
        macro_f1=float(f1[in_gold].mean()) if in_gold.any() else 0.0,
        labels=labels,
        precision=precision.tolist(),
        recall=recall.tolist(),
        f1=f1.tolist(),
        support=support.tolist(),
        confusion=confusion.tolist(),
    )


@dataclass(frozen=True)
class StrongCurve:
    """Quality against the share of calls sent to the strong model.

    Prompts are sorted by complexity, highest first, and the top `share` go to
    the strong model. `quality[i]` is the accuracy when `share[i]` of calls are
    strong.
    """

    share: npt.NDArray[np.float64]
    quality: npt.NDArray[np.float64]
    weak_accuracy: float
    strong_accuracy: float

    def share_for(self, fraction_of_strong: float = 0.95) -> float:
        """The smallest strong share reaching `fraction_of_strong` of strong-only."""
        target = fraction_of_strong * self.strong_accuracy
        reached = np.nonzero(self.quality >= target - 1e-12)[0]
        return float(self.share[reached[0]]) if reached.size else 1.0


def strong_curve(
    complexity: Sequence[float] | npt.NDArray[np.float64],
    weak_correct: Sequence[bool] | npt.NDArray[np.bool_],
    strong_correct: Sequence[bool] | npt.NDArray[np.bool_],
) -> StrongCurve:
    """The RouteLLM-style curve for scores and per-prompt weak/strong outcomes."""
    scores = np.asarray(complexity, dtype=np.float64)
    weak = np.asarray(weak_correct, dtype=np.float64)
    strong = np.asarray(strong_correct, dtype=np.float64)
    n = len(scores)
    if n == 0:
        msg = "No prompts to build a strong-share curve from."
        raise ValueError(msg)
    # A stable sort on the negated score keeps ties in input order, so the
    # curve is deterministic.
    order = np.argsort(-scores, kind="stable")
    gain = strong[order] - weak[order]
    correct = weak.sum() + np.concatenate([[0.0], np.cumsum(gain)])
    return StrongCurve(
        share=np.arange(n + 1, dtype=np.float64) / n,
        quality=correct / n,
        weak_accuracy=float(weak.mean()),
        strong_accuracy=float(strong.mean()),
    )
