"""`llm-router calibrate`: complexity thresholds for a target tier mix.

The policy's shape stays: each task keeps its base tier, and the score moves a
turn one tier per threshold crossed. Calibration searches threshold values
among quantiles of the operator's own traffic scores for the set whose tier
mix is closest (L1) to the target, preferring, on ties, values nearest the
policy's current ones. Turns below `min_confidence` go to the default tier
whatever the thresholds, so their share is fixed.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import yaml

from llm_router.classifiers.base import Classification
from llm_router.errors import ConfigError
from llm_router.policy.schema import ComplexityRules, Policy

# The search is exhaustive over a grid of quantiles: a coarser grid for
# policies with more thresholds keeps it to ~20k candidate sets (well under a
# second); 2.5% quantile steps suit three thresholds.
_MAX_CANDIDATE_SETS = 20_000


@dataclass(frozen=True)
class Calibration:
    """The thresholds found and the tier mix they produce on the traffic."""

    rules: ComplexityRules
    mix: dict[str, float]
    target: dict[str, float]
    error: float


def parse_target(text: str, tiers: Sequence[str]) -> dict[str, float]:
    """Parse `small=0.5,medium=0.3,large=0.2` into shares that sum to 1."""
    target: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        name = name.strip()
        try:
            share = float(value)
        except ValueError:
            share = -1.0
        if not sep or share < 0:
            msg = (
                f"Bad target {part!r}; write tier=share pairs such as "
                "small=0.5,medium=0.3,large=0.2."
            )
            raise ConfigError(msg)
        if name not in tiers:
            msg = f"Unknown tier {name!r} in --target. Known tiers: {', '.join(tiers)}."
            raise ConfigError(msg)
        target[name] = share
    total = sum(target.values())
    if not 0.99 <= total <= 1.01:
        msg = f"Target shares sum to {total:.3f}; they must sum to 1."
        raise ConfigError(msg)
    return {tier: target.get(tier, 0.0) for tier in tiers}


def calibrate(
    policy: Policy, results: Sequence[Classification], target: dict[str, float]
) -> Calibration:
    """The thresholds whose tier mix on `results` is closest to `target`."""
    if not results:
        msg = "No traffic to calibrate on; give --jsonl at least one row."
        raise ConfigError(msg)
    tiers = policy.tier_names
    routing = policy.routing
    current = routing.complexity
    n_down, n_up = len(current.step_down_below), len(current.step_up_above)
    if n_down + n_up == 0:
        msg = (
            "routing.complexity has no thresholds to calibrate; give it at least "
            "one step_down_below or step_up_above value."
        )
        raise ConfigError(msg)

    confident = np.asarray([r.confidence >= routing.min_confidence for r in results])
    scores = np.asarray([r.complexity for r in results], dtype=np.float64)
    base = np.asarray(
        [
            tiers.index(policy.task_tiers.get(r.task, policy.default_tier))
            for r in results
        ]
    )
    fixed = np.zeros(len(tiers))
    fixed[tiers.index(policy.default_tier)] = float((~confident).sum())
    scores, base = scores[confident], base[confident]

    candidates = _candidate_values(scores, n_down + n_up)
    wanted = np.asarray([target[t] for t in tiers]) * len(results)
    best: tuple[float, float, tuple[float, ...]] | None = None
    now = (*sorted(current.step_down_below, reverse=True), *current.step_up_above)
    for values in itertools.combinations(candidates, n_down + n_up):
        # combinations are ascending: the lowest n_down are the down steps.
        downs, ups = values[:n_down], values[n_down:]
        counts = _tier_counts(scores, base, downs, ups, len(tiers)) + fixed
        error = float(np.abs(counts - wanted).sum()) / len(results)
        ordered = (*sorted(downs, reverse=True), *ups)
        distance = float(np.abs(np.asarray(ordered) - np.asarray(now)).sum())
        key = (round(error, 9), distance, ordered)
        if best is None or key[:2] < best[:2]:
            best = key
    assert best is not None
    ordered = best[2]
    rules = ComplexityRules(
        step_down_below=tuple(round(v, 4) for v in ordered[:n_down]),
        step_up_above=tuple(round(v, 4) for v in ordered[n_down:]),
    )
    downs_final = tuple(sorted(rules.step_down_below))
    counts = (
        _tier_counts(scores, base, downs_final, rules.step_up_above, len(tiers)) + fixed
    )
    mix = {tier: float(c) / len(results) for tier, c in zip(tiers, counts, strict=True)}
    return Calibration(rules=rules, mix=mix, target=target, error=best[0])


def _candidate_values(scores: npt.NDArray[np.float64], k: int) -> list[float]:
    """Quantiles of the scores (as fine as the search budget allows), and 0, 1."""
    steps = 200
    while steps > 4 and math.comb(steps + 3, k) > _MAX_CANDIDATE_SETS:
        steps -= 1
    quantiles = np.quantile(scores, np.linspace(0, 1, steps + 1))
    values = {0.0, 1.0, *(float(v) for v in quantiles)}
    return sorted(v for v in values if 0.0 <= v <= 1.0)


def _tier_counts(
    scores: npt.NDArray[np.float64],
    base: npt.NDArray[np.int64],
    downs: Sequence[float],
    ups: Sequence[float],
    n_tiers: int,
) -> npt.NDArray[np.float64]:
    shift = np.zeros(len(scores), dtype=np.int64)
    for value in downs:
        shift -= scores < value
    for value in ups:
        shift += scores > value
    tier = np.clip(base + shift, 0, n_tiers - 1)
    return np.bincount(tier, minlength=n_tiers).astype(np.float64)


_FLOW_LIST = r"\[[^\]\n]*\]"


def _keep_key(value: str) -> Callable[[re.Match[str]], str]:
    def replace(match: re.Match[str]) -> str:
        return match.group(1) + value

    return replace


def write_thresholds(policy_text: str, rules: ComplexityRules) -> str:
    """The policy YAML with new thresholds, keeping comments where possible."""
    down = "[" + ", ".join(f"{v:g}" for v in rules.step_down_below) + "]"
    up = "[" + ", ".join(f"{v:g}" for v in rules.step_up_above) + "]"
    text = policy_text
    patterns = (
        (re.compile(rf"^(\s*step_down_below:\s*){_FLOW_LIST}", re.MULTILINE), down),
        (re.compile(rf"^(\s*step_up_above:\s*){_FLOW_LIST}", re.MULTILINE), up),
    )
    replaced = 0
    for pattern, value in patterns:
        text, count = pattern.subn(_keep_key(value), text, count=1)
        replaced += count
    if replaced == 2:
        return text

    # Block-style lists or no complexity section: rewrite the document.
    document = yaml.safe_load(policy_text) or {}
    routing = document.setdefault("routing", {})
    routing["complexity"] = {
        "step_down_below": list(rules.step_down_below),
        "step_up_above": list(rules.step_up_above),
    }
    dumped: str = yaml.safe_dump(document, sort_keys=False)
    return dumped
