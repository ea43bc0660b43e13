"""The scores `llm-router eval` reports, checked against scikit-learn and by hand."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

from llm_router.classifiers.base import TASKS
from llm_router.evaluation.metrics import score_tasks, strong_curve


def test_task_scores_match_scikit_learn() -> None:
    rng = np.random.default_rng(7)
    gold = [TASKS[i] for i in rng.integers(0, 6, 300)]
    predicted = [t if rng.random() < 0.7 else TASKS[rng.integers(0, 8)] for t in gold]

    scores = score_tasks(gold, predicted, TASKS)

    assert scores.accuracy == pytest.approx(accuracy_score(gold, predicted))
    present = sorted(set(gold))
    per_label = f1_score(gold, predicted, labels=present, average=None)
    assert scores.macro_f1 == pytest.approx(float(np.mean(per_label)))
    expected = confusion_matrix(gold, predicted, labels=scores.labels)
    assert scores.confusion == expected.tolist()


def test_task_scores_reject_length_mismatch() -> None:
    with pytest.raises(ValueError, match="2 gold labels but 1 predictions"):
        score_tasks(["open_qa", "rewrite"], ["open_qa"], TASKS)


def test_strong_curve_by_hand() -> None:
    # Scores rank prompts c > a > b > d; only c and a gain from the strong model.
    curve = strong_curve(
        [0.6, 0.2, 0.9, 0.1],
        weak_correct=[False, True, False, True],
        strong_correct=[True, True, True, False],
    )

    assert curve.weak_accuracy == 0.5
    assert curve.strong_accuracy == 0.75
    assert curve.quality.tolist() == [0.5, 0.75, 1.0, 1.0, 0.75]
    assert curve.share_for(0.95) == 0.25
    assert curve.share_for(1.0) == 0.25


def test_strong_curve_needs_prompts() -> None:
    with pytest.raises(ValueError, match="No prompts"):
        strong_curve([], [], [])
