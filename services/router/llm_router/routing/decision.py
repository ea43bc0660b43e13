"""Apply the policy to a classification: the pure part of routing."""

from __future__ import annotations

from dataclasses import dataclass, field

from llm_router.classifiers.base import Classification
from llm_router.policy.schema import Policy


@dataclass(slots=True)
class Decision:
    """Where a turn goes, and why."""

    tier: str
    model: str
    task: str
    confidence: float
    complexity: float
    reason: str
    classifier: str
    top_tasks: list[tuple[str, float]] = field(default_factory=list)
    decision_ms: float = 0.0
    cache_hit: bool = False
    forced: bool = False

    def to_json(self) -> dict[str, object]:
        """The decision as `/v1/route` returns it."""
        return {
            "tier": self.tier,
            "model": self.model,
            "task": self.task,
            "confidence": round(self.confidence, 4),
            "complexity": round(self.complexity, 4),
            "top_tasks": [
                {"task": task, "probability": round(p, 4)} for task, p in self.top_tasks
            ],
            "reason": self.reason,
            "classifier": self.classifier,
            "forced": self.forced,
            "cache_hit": self.cache_hit,
            "decision_ms": round(self.decision_ms, 4),
        }


def choose_tier(policy: Policy, result: Classification) -> tuple[str, str]:
    """The tier for a classification under `policy`, and the reason in words."""
    task, confidence = result.task, result.confidence
    routing = policy.routing
    if confidence < routing.min_confidence:
        reason = (
            f"task {task} at confidence {confidence:.2f} is below min_confidence "
            f"{routing.min_confidence:.2f}: default tier"
        )
        return policy.default_tier, reason

    tiers = policy.tier_names
    base = policy.task_tiers.get(task, policy.default_tier)
    shift = routing.complexity.shift(result.complexity)
    index = min(len(tiers) - 1, max(0, tiers.index(base) + shift))
    reason = f"task {task} ({confidence:.2f}) -> {base}"
    if shift:
        direction = "up" if shift > 0 else "down"
        reason += (
            f"; complexity {result.complexity:.2f} moves {abs(shift)} "
            f"{direction} -> {tiers[index]}"
        )
    return tiers[index], reason
