"""Task-and-complexity classifiers behind one interface (see `base`)."""

from llm_router.classifiers.base import (
    TASKS,
    Classification,
    Classifier,
    Turn,
)

__all__ = ["TASKS", "Classification", "Classifier", "Turn"]
