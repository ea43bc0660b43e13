"""Build the classifier the settings name."""

from __future__ import annotations

from llm_router.classifiers.base import Classifier
from llm_router.errors import ConfigError
from llm_router.settings import Settings
from llm_router.telemetry.metrics import Metrics


def build_classifier(
    settings: Settings, *, metrics: Metrics | None = None
) -> Classifier:
    """The configured classifier; heavy dependencies load only when chosen.

    `metrics` receives the counts of a remote classifier's fallbacks.
    """
    if settings.classifier == "triton":
        from llm_router.classifiers.triton import TritonClassifier

        return TritonClassifier.from_settings(settings, metrics=metrics)
    if settings.classifier == "rules":
        from llm_router.classifiers.rules import RulesClassifier

        return RulesClassifier()
    if settings.classifier == "learned":
        from llm_router.classifiers.learned import LearnedClassifier

        return LearnedClassifier.from_artifact(settings.classifier_artifact)
    msg = (
        f"Classifier {settings.classifier!r} is not available in this build. "
        "Known classifiers: learned, rules, triton."
    )
    raise ConfigError(msg)
