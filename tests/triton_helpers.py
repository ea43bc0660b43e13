"""What the Triton tests share: the repository's launcher, a server, classifiers.

The launcher and the latency benchmark live next to the model repository in
`services/router/triton/`, outside any package, so they are imported by path.
The `triton` fixture is module-scoped: each test module that asks for it gets
a server of its own (the fallback test stops its server mid-test).
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from helpers import make_settings
from llm_router.classifiers.base import Classifier
from llm_router.classifiers.factory import build_classifier
from llm_router.classifiers.triton import TritonClassifier
from llm_router.settings import Settings
from llm_router.telemetry.metrics import Metrics

ROOT = Path(__file__).resolve().parents[1]
TRITON_DIR = ROOT / "services" / "router" / "triton"


def load_triton_script(name: str) -> ModuleType:
    """Import `<name>.py` from the model repository's folder."""
    spec = importlib.util.spec_from_file_location(name, TRITON_DIR / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


launcher = load_triton_script("serve_triton")


@pytest.fixture(scope="module")
def triton(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The repository's model on a real Triton server, one per test module."""
    workspace = tmp_path_factory.mktemp("triton-workspace")
    with launcher.serve_triton(workspace=workspace) as server:
        yield server


@functools.cache
def in_process_classifier() -> Classifier:
    """The in-process classifier the router uses by default, as model.py builds it."""
    default = Settings.model_fields["classifier"].default
    return build_classifier(make_settings(classifier=default))


def triton_classifier(url: str, metrics: Metrics, **overrides: Any) -> TritonClassifier:
    """The router's `triton` classifier calling `url`, counting into `metrics`."""
    settings = make_settings(classifier="triton", triton_url=url, **overrides)
    classifier = build_classifier(settings, metrics=metrics)
    assert isinstance(classifier, TritonClassifier)
    return classifier


def fallback_count(metrics: Metrics, reason: str) -> float:
    """How often the `triton` classifier fell back for `reason`."""
    value = metrics.registry.get_sample_value(
        "llm_router_classifier_fallbacks_total",
        {"classifier": "triton", "reason": reason},
    )
    return value or 0.0
