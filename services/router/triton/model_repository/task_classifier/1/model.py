"""Triton Python backend for the router's task-and-complexity classifier.

This file adapts Triton requests to `Classifier.classify_many` and nothing
more: the classifier and its artifact come from the `llm_router` package,
built by the same factory the router uses in process. The image that runs
this model must therefore have `llm_router` installed (see the Dockerfile
next to the model repository); the stub process must be able to import it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils

from llm_router.classifiers.base import TASKS, Turn
from llm_router.classifiers.factory import build_classifier
from llm_router.settings import Settings

logger = logging.getLogger(__name__)

# A classifier that calls Triton cannot be served by Triton.
_REMOTE_CLASSIFIERS = frozenset({"triton"})


class TritonPythonModel:
    """Serves the in-process classifier; one row of TEXT is one turn."""

    def initialize(self, args: dict[str, str]) -> None:
        """Build the classifier named by the model config's parameters."""
        config = json.loads(args["model_config"])
        parameters = {
            key: value.get("string_value", "")
            for key, value in config.get("parameters", {}).items()
        }
        settings = served_settings(parameters)
        self.classifier = build_classifier(settings)
        logger.info(
            "task_classifier serves the %s classifier (%d tasks)",
            self.classifier.name,
            len(TASKS),
        )

    def execute(self, requests: list[Any]) -> list[Any]:
        """Classify every row of every request in one `classify_many` call."""
        parsed: list[list[Turn] | str] = []
        for request in requests:
            try:
                parsed.append(read_turns(request))
            except ValueError as exc:
                parsed.append(str(exc))
        turns = [turn for item in parsed if isinstance(item, list) for turn in item]

        results = self.classifier.classify_many(turns)
        probabilities = np.asarray(
            [r.probabilities for r in results], dtype=np.float32
        ).reshape(len(results), len(TASKS))
        complexity = np.asarray(
            [r.complexity for r in results], dtype=np.float32
        ).reshape(len(results), 1)

        responses = []
        start = 0
        for item in parsed:
            if isinstance(item, str):
                error = pb_utils.TritonError(item)
                responses.append(pb_utils.InferenceResponse(error=error))
                continue
            end = start + len(item)
            outputs = [
                pb_utils.Tensor("TASK_PROBABILITIES", probabilities[start:end]),
                pb_utils.Tensor("COMPLEXITY", complexity[start:end]),
            ]
            responses.append(pb_utils.InferenceResponse(output_tensors=outputs))
            start = end
        return responses

    def finalize(self) -> None:
        """Drop the classifier when Triton unloads the model."""
        self.classifier = None


def served_settings(parameters: dict[str, str]) -> Settings:
    """Settings naming the in-process classifier this model serves."""
    default = Settings.model_fields["classifier"].default
    name = parameters.get("classifier") or default
    if name in _REMOTE_CLASSIFIERS:
        msg = (
            f"The task_classifier model cannot serve classifier {name!r}: it "
            "calls Triton itself. Set the `classifier` parameter in "
            "config.pbtxt to an in-process classifier (learned or rules), or "
            "leave it empty for the router's default."
        )
        raise ValueError(msg)
    artifact = parameters.get("classifier_artifact") or None
    values: dict[str, Any] = {"classifier": name}
    if artifact is not None:
        values["classifier_artifact"] = Path(artifact)
    return Settings(**values)


def read_turns(request: Any) -> list[Turn]:
    """The turns of one request: TEXT rows, with CONTEXT rows when sent."""
    texts = pb_utils.get_input_tensor_by_name(request, "TEXT").as_numpy()
    texts = texts.reshape(-1)
    context_tensor = pb_utils.get_input_tensor_by_name(request, "CONTEXT")
    if context_tensor is None:
        contexts = [b""] * len(texts)
    else:
        contexts = list(context_tensor.as_numpy().reshape(-1))
    if len(contexts) != len(texts):
        msg = (
            f"CONTEXT has {len(contexts)} rows but TEXT has {len(texts)}. "
            "Send one CONTEXT row per TEXT row, or no CONTEXT at all."
        )
        raise ValueError(msg)
    return [
        Turn(text=_decode(text), context=_decode(context))
        for text, context in zip(texts, contexts, strict=True)
    ]


def _decode(value: bytes | str) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)
