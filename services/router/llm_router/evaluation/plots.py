"""PNG plots for `llm-router eval`; needs the `llm-router[eval]` extra."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from llm_router.errors import ConfigError
from llm_router.evaluation.metrics import TaskScores

if TYPE_CHECKING:
    from llm_router.evaluation.report import Evaluation


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        msg = (
            "Saving plots needs matplotlib. Install the extra with "
            "`pip install 'llm-router[eval]'`, or pass --no-plots."
        )
        raise ConfigError(msg) from None
    return plt


def plot_confusion(scores: TaskScores, path: Path) -> Path:
    """A heatmap of gold task (rows) against predicted task (columns)."""
    plt = _pyplot()
    size = max(4.0, 0.6 * len(scores.labels) + 2)
    figure, axes = plt.subplots(figsize=(size, size))
    image = axes.imshow(scores.confusion, cmap="Blues")
    axes.set_xticks(range(len(scores.labels)), scores.labels, rotation=60, ha="right")
    axes.set_yticks(range(len(scores.labels)), scores.labels)
    axes.set_xlabel("predicted task")
    axes.set_ylabel("gold task")
    axes.set_title(f"accuracy {scores.accuracy:.3f}, macro-F1 {scores.macro_f1:.3f}")
    peak = max((max(row) for row in scores.confusion), default=0)
    for i, row in enumerate(scores.confusion):
        for j, count in enumerate(row):
            if count:
                colour = "white" if count > peak / 2 else "black"
                axes.text(j, i, str(count), ha="center", va="center", color=colour)
    figure.colorbar(image, ax=axes, fraction=0.046)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot_cost_quality(evaluation: Evaluation, path: Path) -> Path:
    """Cost (and, with outcomes, quality) against the share sent to the top tier."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(7, 4.5))
    shares = [share for share, _ in evaluation.curve_costs]
    axes.plot(
        shares,
        [cost for _, cost in evaluation.curve_costs],
        label=f"cost vs all-{evaluation.largest_tier}",
        color="tab:orange",
    )
    axes.scatter(
        [evaluation.policy_strong_share],
        [evaluation.relative_cost],
        color="tab:red",
        zorder=3,
        label="this policy",
    )
    curve = evaluation.curve
    if curve is not None:
        axes.plot(curve.share, curve.quality, label="accuracy", color="tab:blue")
        axes.axhline(
            0.95 * curve.strong_accuracy,
            linestyle="--",
            color="grey",
            label="95% of strong-only accuracy",
        )
        axes.axvline(curve.share_for(0.95), linestyle=":", color="tab:blue")
    axes.set_xlabel(f"share of prompts sent to {evaluation.largest_tier}")
    axes.set_ylabel("relative cost / accuracy")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.05)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    axes.set_title("cost and quality as the top-complexity share grows")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
