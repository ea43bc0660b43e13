"""The classifier interface every classifier implements.

A classifier looks at one turn (the latest user message, with the earlier turns
as context) and returns a probability per task and a complexity score in
[0, 1], where higher means a stronger model is needed. Task order is fixed by
`TASKS`; probability vectors, artifacts and Triton outputs all use that order.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass

TASKS: tuple[str, ...] = (
    "open_qa",
    "closed_qa",
    "summarization",
    "text_generation",
    "code_generation",
    "chatbot",
    "classification",
    "rewrite",
    "brainstorming",
    "extraction",
    "math_reasoning",
    "other",
)
TASK_INDEX: dict[str, int] = {task: i for i, task in enumerate(TASKS)}


@dataclass(frozen=True, slots=True)
class Turn:
    """What a classifier sees of a conversation.

    `text` is the latest user message (array parts joined). `context` is the
    text of the turns before it, most recent last, already truncated by the
    caller; it is empty for a single-turn request.
    """

    text: str
    context: str = ""


@dataclass(frozen=True, slots=True)
class Classification:
    """Task probabilities (aligned with `TASKS`) and a complexity score."""

    probabilities: tuple[float, ...]
    complexity: float

    def __post_init__(self) -> None:
        if len(self.probabilities) != len(TASKS):
            msg = (
                f"Expected {len(TASKS)} task probabilities, "
                f"got {len(self.probabilities)}."
            )
            raise ValueError(msg)

    @property
    def task(self) -> str:
        """The most likely task."""
        best = max(range(len(TASKS)), key=self.probabilities.__getitem__)
        return TASKS[best]

    @property
    def confidence(self) -> float:
        """The probability of the most likely task."""
        return max(self.probabilities)

    def top_tasks(self, k: int = 3) -> list[tuple[str, float]]:
        """The k most likely tasks with their probabilities, best first."""
        ranked = sorted(
            zip(TASKS, self.probabilities, strict=True),
            key=lambda pair: pair[1],
            reverse=True,
        )
        return ranked[:k]


class Classifier(abc.ABC):
    """Classifies turns by task and complexity.

    In-process classifiers implement `classify`; the router always calls
    `aclassify`, so a remote classifier (Triton) overrides that instead.
    """

    name: str = "classifier"

    @abc.abstractmethod
    def classify(self, turn: Turn) -> Classification:
        """Classify one turn."""

    def classify_many(self, turns: Sequence[Turn]) -> list[Classification]:
        """Classify a batch of turns; override when batching is cheaper."""
        return [self.classify(turn) for turn in turns]

    async def aclassify(self, turn: Turn) -> Classification:
        """Classify one turn from the event loop."""
        return self.classify(turn)

    async def ready(self) -> bool:
        """Whether the classifier can answer now (for `/readyz`)."""
        return True

    async def aclose(self) -> None:
        """Release connections or sessions held by the classifier."""
