"""Choose the default policy's complexity thresholds from held-out predictions.

    uv run python services/router/training/tune_thresholds.py PREDICTIONS.npz

PREDICTIONS.npz is what `evaluate_heldout.py --save-predictions` writes, so
every score used here comes from a model that never saw the prompt's source.

- `step_up_above`: the cut that best separates the labelled "needs the
  strongest model" rows (complexity 0.85) from the rest of our evaluation
  sets (balanced accuracy);
- the first `step_down_below`: the cut that best separates "a small model is
  enough" rows (0.15) from the rest, the same way;
- the second `step_down_below` (which takes code and maths to the cheapest
  tier): the highest cut whose own effect, the code and maths prompts it
  sends to the small tier on top of those that reach it anyway (mistaken for
  another task, or under `min_confidence`), stays at or under
  `--max-added-hard-to-small` (default 2%) of the held-out MBPP, GSM8K and
  MMLU maths rows and of our evaluation sets' code and maths rows.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import trainlib

from llm_router.classifiers.base import TASKS, Classification
from llm_router.policy.loader import load_default_policy
from llm_router.policy.schema import ComplexityRules
from llm_router.routing.decision import choose_tier

GRID = np.round(np.arange(0.02, 0.98, 0.01), 2)
HARD = ("code_generation", "math_reasoning")


def _best_cut(scores: Any, positive: Any) -> float:
    """The cut maximising balanced accuracy of `score > cut` for `positive`."""
    best, best_cut = -1.0, 0.5
    for cut in GRID:
        above = scores > cut
        recall_pos = above[positive].mean() if positive.any() else 0.0
        recall_neg = (~above[~positive]).mean() if (~positive).any() else 0.0
        balanced = (recall_pos + recall_neg) / 2
        if balanced > best:
            best, best_cut = balanced, float(cut)
    return best_cut


def _hard_to_small(
    policy: Any, probabilities: Any, complexity: Any, rules: ComplexityRules
) -> float:
    routing = policy.routing.model_copy(update={"complexity": rules})
    tuned = policy.model_copy(update={"routing": routing})
    tiers = [
        choose_tier(tuned, Classification(tuple(p.tolist()), float(c)))[0]
        for p, c in zip(probabilities, complexity, strict=True)
    ]
    return sum(t == "small" for t in tiers) / max(1, len(tiers))


def main(argv: Sequence[str] | None = None) -> int:
    """Print the tuned thresholds and what they do on held-out prompts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("predictions", type=Path)
    parser.add_argument("--shared", type=Path, default=trainlib.DEFAULT_SHARED_DIR)
    parser.add_argument("--cap", type=int, default=150)
    parser.add_argument("--max-added-hard-to-small", type=float, default=0.02)
    args = parser.parse_args(argv)

    saved = np.load(args.predictions, allow_pickle=False)
    rows = {
        r.id: r
        for r in trainlib.load_shared_rows(args.shared, cap=args.cap)
        + trainlib.load_own_training()
    }
    evaluation = trainlib.load_own_eval()
    labels = np.asarray([r.complexity for r in evaluation])
    eval_complexity = saved["eval_complexity"]
    up = _best_cut(eval_complexity, labels > 0.7)
    down = _best_cut(eval_complexity, labels > 0.3)

    held = [rows.get(i) for i in saved["held_ids"].tolist()]
    hard_held = np.asarray([r is not None and r.task in HARD for r in held])
    hard_eval = np.asarray([r.task in HARD for r in evaluation])
    probabilities = np.vstack(
        [saved["held_probabilities"][hard_held], saved["eval_probabilities"][hard_eval]]
    )
    complexity = np.concatenate(
        [saved["held_complexity"][hard_held], eval_complexity[hard_eval]]
    )
    policy = load_default_policy()
    floor = _hard_to_small(
        policy,
        probabilities,
        complexity,
        ComplexityRules(step_down_below=(down,), step_up_above=(up,)),
    )
    lowest = 0.0
    for cut in GRID[down > GRID]:
        rules = ComplexityRules(step_down_below=(down, float(cut)), step_up_above=(up,))
        added = _hard_to_small(policy, probabilities, complexity, rules) - floor
        if added <= args.max_added_hard_to_small:
            lowest = float(cut)
    rules = ComplexityRules(step_down_below=(down, lowest), step_up_above=(up,))
    share = _hard_to_small(policy, probabilities, complexity, rules)
    print(f"step_down_below: [{down}, {lowest}]")
    print(f"step_up_above: [{up}]")
    print(
        f"held-out code/maths prompts to small: {share:.3%} of {len(complexity)} "
        f"({floor:.3%} without the second cut: mistaken for another task or "
        "under min_confidence)"
    )
    for name, positive in (("strong", labels > 0.7), ("small", labels < 0.3)):
        print(
            f"labelled {name} rows: median complexity "
            f"{np.median(eval_complexity[positive]):.3f} vs "
            f"{np.median(eval_complexity[~positive]):.3f} for the rest"
        )
    tasks = [TASKS[i] for i in saved["eval_probabilities"].argmax(axis=1)]
    print(f"evaluation rows (our own sets): {len(tasks)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
