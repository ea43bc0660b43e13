"""The learned classifier: the bundled artifact, routing, and trainer parity."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import make_settings
from llm_router.classifiers._embedding import split_words
from llm_router.classifiers.base import TASKS, Turn
from llm_router.classifiers.factory import build_classifier
from llm_router.classifiers.learned import ARTIFACT_DIR, LearnedClassifier
from llm_router.errors import ConfigError
from llm_router.policy.loader import load_default_policy
from llm_router.routing.decision import choose_tier
from llm_router.settings import Settings

REPO = Path(__file__).resolve().parents[3]
TRAIN = REPO / "services/router/training/train.py"
FIXTURE = Path(__file__).with_name("learned_fixture.jsonl")


@pytest.fixture(scope="module")
def classifier() -> LearnedClassifier:
    return LearnedClassifier.from_artifact()


def test_learned_is_the_default_classifier() -> None:
    assert Settings.model_fields["classifier"].default == "learned"
    built = build_classifier(make_settings(classifier="learned"))
    assert isinstance(built, LearnedClassifier)
    assert built.name == "learned"


def test_bundled_artifact_fits_the_size_budget() -> None:
    total = sum(p.stat().st_size for p in ARTIFACT_DIR.iterdir() if p.is_file())
    assert total <= 20 * 1024 * 1024, f"artifact is {total / 1e6:.1f} MB"


@pytest.mark.parametrize(
    ("prompt", "tier"),
    [
        ("Write a FizzBuzz program in Python", "small"),
        (
            "Design a distributed system for a globally replicated key-value store "
            "with consensus, partitioning and failure recovery.",
            "large",
        ),
    ],
)
def test_default_policy_routes_the_seed_examples(
    classifier: LearnedClassifier, prompt: str, tier: str
) -> None:
    result = classifier.classify(Turn(prompt))

    chosen, reason = choose_tier(load_default_policy(), result)

    assert chosen == tier, reason


@pytest.mark.parametrize(
    ("text", "task"),
    [
        (
            "Write a Python function that returns the n-th prime number.",
            "code_generation",
        ),
        ("If 4 pencils cost $1.20, how much do 10 pencils cost?", "math_reasoning"),
        (
            "Summarize this article in two sentences:\n\nThe council met...",
            "summarization",
        ),
        ("Give me some ideas for a team offsite in the mountains.", "brainstorming"),
        ("hey, how's it going?", "chatbot"),
        ("Translate to German: the train leaves at noon.", "rewrite"),
    ],
)
def test_clear_prompts_get_their_task(
    classifier: LearnedClassifier, text: str, task: str
) -> None:
    result = classifier.classify(Turn(text))

    assert result.task == task, result.top_tasks()


def test_follow_up_after_code_is_a_rewrite(classifier: LearnedClassifier) -> None:
    context = (
        "Write a function that merges two sorted lists.\n"
        "def merge(a, b):\n    return sorted(a + b)"
    )

    result = classifier.classify(Turn("Make it shorter.", context=context))

    assert result.task == "rewrite", result.top_tasks()


def test_outputs_are_distributions_and_scores_in_range(
    classifier: LearnedClassifier,
) -> None:
    turns = [Turn(""), Turn("x" * 50_000), Turn("héllo wörld ☃"), Turn("?", "ctx")]

    for result in classifier.classify_many(turns):
        assert len(result.probabilities) == len(TASKS)
        assert abs(sum(result.probabilities) - 1.0) < 1e-9
        assert 0.0 <= result.complexity <= 1.0


def test_batch_and_single_predictions_agree(classifier: LearnedClassifier) -> None:
    rows = [json.loads(line) for line in FIXTURE.read_text().splitlines()]
    turns = [Turn(r["text"], r.get("context", "")) for r in rows]

    batch = classifier.classify_many(turns)
    single = [classifier.classify(turn) for turn in turns]

    for b, s in zip(batch, single, strict=True):
        assert np.allclose(b.probabilities, s.probabilities, atol=1e-12, rtol=0)
        assert abs(b.complexity - s.complexity) < 1e-12


@pytest.mark.parametrize(
    "text",
    [
        "Write a Python function: def f(x_1): return x_1 ** 2  # (done!)",
        "tabs\tand\nnewlines\x01control\x7fdelete ~`{}[]|\\",
        "",
    ],
)
def test_ascii_fast_path_splits_like_the_unicode_path(text: str) -> None:
    # A trailing accented word forces the general path; it must only add "e".
    assert split_words(text + " \u00e9") == [*split_words(text), "e"]


def test_missing_artifact_is_a_config_error_naming_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"train\.py.*LLM_ROUTER_CLASSIFIER=rules"):
        LearnedClassifier.from_artifact(tmp_path)


def test_artifact_with_other_tasks_is_rejected(tmp_path: Path) -> None:
    meta = json.loads((ARTIFACT_DIR / "learned.json").read_text())
    meta["tasks"] = [*TASKS[:-1], "unknown"]
    (tmp_path / "learned.json").write_text(json.dumps(meta))

    with pytest.raises(ConfigError, match="Retrain it"):
        LearnedClassifier.from_artifact(tmp_path)


def _train(output: Path) -> Path:
    predictions = output / "trainer_predictions.jsonl"
    completed = subprocess.run(
        [
            sys.executable,
            str(TRAIN),
            "--data",
            str(FIXTURE),
            "--output",
            str(output),
            "--predictions",
            str(predictions),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return predictions


@pytest.mark.slow
def test_training_on_a_fixture_end_to_end_matches_the_runtime(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    predictions = _train(first)
    _train(second)

    with (
        np.load(first / "learned.npz") as a,
        np.load(second / "learned.npz") as b,
    ):
        assert sorted(a.files) == sorted(b.files)
        for name in a.files:
            assert np.array_equal(a[name], b[name]), f"{name} differs between runs"
        # 12 task logits, complexity, and the maths term the fixture's rows
        # with `solution_steps` train.
        assert a["sparse_weights"].shape[1] == len(TASKS) + 2
        assert np.any(a["sparse_weights"][:, -1] != 0)

    runtime = LearnedClassifier.from_artifact(first)
    rows = [json.loads(line) for line in FIXTURE.read_text().splitlines()]
    expected = [json.loads(line) for line in predictions.read_text().splitlines()]
    results = runtime.classify_many(
        [Turn(r["text"], r.get("context", "")) for r in rows]
    )
    assert [e["id"] for e in expected] == [r["id"] for r in rows]
    for row, want, got in zip(rows, expected, results, strict=True):
        trainer = [want["probabilities"][task] for task in TASKS]
        assert np.allclose(got.probabilities, trainer, atol=1e-9, rtol=0), row["id"]
        assert abs(got.complexity - want["complexity"]) < 1e-9, row["id"]
    correct = sum(r.task == row["task"] for r, row in zip(results, rows, strict=True))
    assert correct / len(rows) > 0.9, "the fixture model should fit its own rows"
