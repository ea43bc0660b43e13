"""The launcher reports why a model repository fails to load.

A copy of the repository's model, configured to serve the `triton` classifier
(which would call Triton from inside Triton), must fail to start with the
model's own message rather than a timeout or Triton's option table.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from triton_helpers import TRITON_DIR, launcher

pytestmark = pytest.mark.slow


def test_a_model_configured_to_serve_triton_fails_to_start_with_the_reason(
    tmp_path: Path,
) -> None:
    repository = tmp_path / "model_repository"
    shutil.copytree(
        TRITON_DIR / "model_repository",
        repository,
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    config = repository / "task_classifier" / "config.pbtxt"
    text = config.read_text("utf-8")
    served = 'key: "classifier"\n    value: { string_value: "" }'
    assert served in text
    config.write_text(
        text.replace(served, served.replace('""', '"triton"')), encoding="utf-8"
    )

    with (
        pytest.raises(launcher.TritonStartError) as caught,
        launcher.serve_triton(repository, workspace=tmp_path / "workspace"),
    ):
        pass

    assert "cannot serve classifier 'triton'" in str(caught.value)
