"""The rule-based classifier: the fallback and the baseline."""

from __future__ import annotations

import pytest

from llm_router.classifiers.base import TASKS, Turn
from llm_router.classifiers.rules import RulesClassifier


@pytest.mark.parametrize(
    ("text", "task"),
    [
        ("Write a Python function that reverses a linked list.", "code_generation"),
        ("Solve for x: 3x + 7 = 22", "math_reasoning"),
        ("Summarize this article in three sentences: ...", "summarization"),
        ("Rephrase this email to sound more polite.", "rewrite"),
        (
            "Classify the sentiment of this review as positive or negative.",
            "classification",
        ),
        ("Extract all dates mentioned in the following text.", "extraction"),
        ("Brainstorm ten names for a coffee shop.", "brainstorming"),
        ("Write a short poem about autumn.", "text_generation"),
        ("hello, how are you today?", "chatbot"),
        ("According to the passage, who founded the company?", "closed_qa"),
        ("Why is the sky blue?", "open_qa"),
    ],
)
def test_rules_recognise_typical_requests(text: str, task: str) -> None:
    result = RulesClassifier().classify(Turn(text))

    assert result.task == task, result.top_tasks()


def test_probabilities_are_a_distribution_and_complexity_is_bounded() -> None:
    result = RulesClassifier().classify(Turn("x" * 50_000))

    assert len(result.probabilities) == len(TASKS)
    assert abs(sum(result.probabilities) - 1.0) < 1e-9
    assert 0.0 <= result.complexity <= 1.0


def test_complexity_rises_with_hard_work() -> None:
    classifier = RulesClassifier()
    easy = classifier.classify(Turn("Write a simple FizzBuzz program in Python."))
    hard = classifier.classify(
        Turn(
            "Design a distributed, fault-tolerant job scheduler with consensus "
            "and replication; analyse the latency and throughput trade-offs."
        )
    )

    assert easy.complexity < 0.12 < 0.72 < hard.complexity


def test_short_follow_up_with_context_is_a_rewrite() -> None:
    turn = Turn("Make it shorter.", context="def merge(a, b): return sorted(a + b)")

    assert RulesClassifier().classify(turn).task == "rewrite"
