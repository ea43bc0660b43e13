"""Build the classifier the settings name."""

from __future__ import annotations

from llm_router.classifiers.base import Classifier
from llm_router.errors import ConfigError
from llm_router.settings import Settings


def build_classifier(settings: Settings) -> Classifier:
    """The configured classifier; heavy dependencies load only when chosen."""
    if settings.classifier == "rules":
        from llm_router.classifiers.rules import RulesClassifier

        return RulesClassifier()
    msg = (
        f"Classifier {settings.classifier!r} is not available in this build. "
        "Known classifiers: rules."
    )
    raise ConfigError(msg)
