"""The learned classifier: TF-IDF and static MiniLM features, two linear heads.

The artifact (trained by `services/router/training/train.py`) holds the
hashed feature keys training kept, with their idf weights, a static WordPiece
embedding table distilled from MiniLM, and one weight matrix: 12 task-logit
columns, the complexity logit, and a maths term (predicted solution length)
added to the complexity logit in proportion to the maths probability.
Serving is numpy only and one turn at a time: extracting the features, a
gather of the weight rows they hit, one dense product, a softmax and a
sigmoid. The same code answers in process, in `llm-router classify` and in
the Triton Python backend, so their outputs agree exactly.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from llm_router.classifiers._embedding import StaticEmbedder
from llm_router.classifiers._features import Vectorizer, extract_features
from llm_router.classifiers.base import TASKS, Classification, Classifier, Turn
from llm_router.errors import ConfigError

logger = logging.getLogger(__name__)

ARTIFACT_DIR = Path(__file__).resolve().parent / "artifacts"
# 2: features are hashed keys (`feature_keys`), no longer strings.
ARTIFACT_FORMAT = 2
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
            if "feature_keys" in arrays:
                vectorizer = Vectorizer(
                    arrays["feature_keys"], arrays["idf"].astype(np.float64)
                )
            # float32 as stored, in row order: a turn gathers a few hundred
            # rows, and gathering rows of a column-major array is ~3x slower.
            sparse = np.ascontiguousarray(arrays["sparse_weights"])
            dense = arrays["dense_weights"].astype(np.float64)
            bias = arrays["bias"].astype(np.float64)
        embedder = None
        table = meta.get("static_table")
        if table:
            with np.load(directory / table, allow_pickle=False) as arrays:
                embedder = StaticEmbedder(arrays["tokens"].tolist(), arrays["vectors"])
        scale = float(meta["config"].get("embedding_scale", 1.0))
        return cls(vectorizer, embedder, sparse, dense, bias, scale)

    def predict_one(self, turn: Turn) -> tuple[list[float], float]:
        """Task probabilities (TASKS order) and complexity of one turn."""
        logits = self.bias.copy()
        if self.vectorizer is not None:
            features = extract_features(turn.text, turn.context)
            columns, weights = self.vectorizer.transform_one(features)
            if columns.size:
                logits += weights @ self.sparse_weights[columns]
        if self.embedder is not None:
            dim = self.embedder.dim
            text = self.embedder.embed_one(turn.text)
            if text is not None:
                logits += (self.embedding_scale * text) @ self.dense_weights[:dim]
            context = self.embedder.embed_one(turn.context) if turn.context else None
            if context is not None:
                half = 0.5 * self.embedding_scale
                logits += (half * context) @ self.dense_weights[dim:]
        # Fourteen numbers: plain floats beat numpy's per-call overhead here.
        return _finish(logits.tolist())


def _finish(logits: list[float]) -> tuple[list[float], float]:
    """Softmax over the task logits; the complexity logit through a sigmoid."""
    tasks = logits[: len(TASKS)]
    top = max(tasks)
    exps = [math.exp(value - top) for value in tasks]
    total = sum(exps)
    probabilities = [value / total for value in exps]
    score = logits[len(TASKS)]
    if len(logits) > len(TASKS) + 1:
        # The maths term (predicted solution length, never negative) counts
        # as much as the turn looks like maths.
        score += probabilities[_MATH] * max(0.0, logits[-1])
    if score >= 0:
        return probabilities, 1.0 / (1.0 + math.exp(-score))
    small = math.exp(score)
    return probabilities, small / (1.0 + small)


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
        probabilities, complexity = self.model.predict_one(turn)
        return Classification(tuple(probabilities), complexity)


def _meta_path(path: Path | None) -> Path:
    if path is None:
        return ARTIFACT_DIR / "learned.json"
    return path / "learned.json" if path.is_dir() else path
