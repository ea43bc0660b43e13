"""The learned classifier: TF-IDF and static MiniLM features, two linear heads.

The artifact (trained by `services/router/training/train.py`) holds a
vocabulary with idf weights, a static WordPiece embedding table distilled from
MiniLM, and one weight matrix: 12 task-logit columns, the complexity logit,
and a maths term (predicted solution length) added to the complexity logit in
proportion to the maths probability. Serving is numpy only: extracting the
features, one sparse and one dense product, a softmax and a sigmoid. The same
code answers in process, in `llm-router classify` and in the Triton Python
backend, so their outputs agree exactly.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from llm_router.classifiers._embedding import StaticEmbedder
from llm_router.classifiers._features import Vectorizer, extract_features, multiply
from llm_router.classifiers.base import TASKS, Classification, Classifier, Turn
from llm_router.errors import ConfigError

logger = logging.getLogger(__name__)

ARTIFACT_DIR = Path(__file__).resolve().parent / "artifacts"
ARTIFACT_FORMAT = 1
_MATH = TASKS.index("math_reasoning")


class LearnedModel:
    """The loaded artifact: turns in, task probabilities and complexity out."""

    def __init__(
        self,
        vectorizer: Vectorizer | None,
        embedder: StaticEmbedder | None,
        sparse_weights: npt.NDArray[np.float64],
        dense_weights: npt.NDArray[np.float64],
        bias: npt.NDArray[np.float64],
        embedding_scale: float,
    ) -> None:
        self.vectorizer = vectorizer
        self.embedder = embedder
        self.sparse_weights = sparse_weights
        self.dense_weights = dense_weights
        self.bias = bias
        self.embedding_scale = embedding_scale

    @classmethod
    def load(cls, path: Path | None = None) -> LearnedModel:
        """Load an artifact directory (or its `learned.json`); bundled by default."""
        meta_path = _meta_path(path)
        directory = meta_path.parent
        try:
            meta: dict[str, Any] = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            msg = (
                f"Cannot read the learned-classifier artifact {str(meta_path)!r} "
                f"({exc}). Retrain it with services/router/training/train.py or "
                "set LLM_ROUTER_CLASSIFIER=rules."
            )
            raise ConfigError(msg) from None
        if meta.get("format") != ARTIFACT_FORMAT or meta.get("tasks") != list(TASKS):
            msg = (
                f"Artifact {str(meta_path)!r} has format {meta.get('format')!r} and "
                f"tasks {meta.get('tasks')!r}; this router needs format "
                f"{ARTIFACT_FORMAT} with tasks {list(TASKS)}. Retrain it."
            )
            raise ConfigError(msg)

        with np.load(directory / "learned.npz", allow_pickle=False) as arrays:
            vectorizer = None
            if "vocabulary" in arrays:
                vectorizer = Vectorizer(
                    arrays["vocabulary"].tolist(), arrays["idf"].astype(np.float64)
                )
            # float32 as stored: `multiply` widens the rows it gathers exactly.
            sparse = arrays["sparse_weights"]
            dense = arrays["dense_weights"].astype(np.float64)
            bias = arrays["bias"].astype(np.float64)
        embedder = None
        table = meta.get("static_table")
        if table:
            with np.load(directory / table, allow_pickle=False) as arrays:
                embedder = StaticEmbedder(arrays["tokens"].tolist(), arrays["vectors"])
        scale = float(meta["config"].get("embedding_scale", 1.0))
        return cls(vectorizer, embedder, sparse, dense, bias, scale)

    def predict(
        self, turns: Sequence[Turn]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Task probabilities (rows x 12, TASKS order) and complexity per turn."""
        logits = np.tile(self.bias, (len(turns), 1))
        if self.vectorizer is not None:
            rows = self.vectorizer.transform(
                [extract_features(turn.text, turn.context) for turn in turns]
            )
            logits += multiply(rows, self.sparse_weights)
        if self.embedder is not None:
            texts = self.embedder.embed([turn.text for turn in turns])
            contexts = self.embedder.embed([turn.context for turn in turns])
            dense = np.hstack([texts, 0.5 * contexts]) * self.embedding_scale
            logits += dense @ self.dense_weights

        task_logits = logits[:, : len(TASKS)]
        task_logits = task_logits - task_logits.max(axis=1, keepdims=True)
        exps = np.exp(task_logits)
        probabilities = exps / exps.sum(axis=1, keepdims=True)
        complexity_logit = logits[:, len(TASKS)]
        if logits.shape[1] > len(TASKS) + 1:
            # The maths term (predicted solution length, never negative)
            # counts as much as the turn looks like maths.
            math = np.maximum(0.0, logits[:, -1])
            complexity_logit = complexity_logit + probabilities[:, _MATH] * math
        complexity = 1.0 / (1.0 + np.exp(-complexity_logit))
        return probabilities, complexity


class LearnedClassifier(Classifier):
    """The default classifier: the trained artifact behind the interface."""

    name = "learned"

    def __init__(self, model: LearnedModel) -> None:
        self.model = model

    @classmethod
    def from_artifact(cls, path: Path | None = None) -> LearnedClassifier:
        """Load the artifact at `path`, or the bundled one."""
        return cls(LearnedModel.load(path))

    def classify(self, turn: Turn) -> Classification:
        """Classify one turn."""
        return self.classify_many([turn])[0]

    def classify_many(self, turns: Sequence[Turn]) -> list[Classification]:
        """Classify a batch with one pair of matrix products."""
        if not turns:
            return []
        probabilities, complexity = self.model.predict(turns)
        return [
            Classification(probabilities=tuple(row.tolist()), complexity=float(score))
            for row, score in zip(probabilities, complexity, strict=True)
        ]


def _meta_path(path: Path | None) -> Path:
    if path is None:
        return ARTIFACT_DIR / "learned.json"
    return path / "learned.json" if path.is_dir() else path
