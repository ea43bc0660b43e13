"""Static checks of the classifier's Triton image (no Docker engine runs here)."""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
TRITON_DIR = ROOT / "services" / "router" / "triton"
DOCKERFILE = TRITON_DIR / "Dockerfile"
DOCKERIGNORE = TRITON_DIR / "Dockerfile.dockerignore"


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions with continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text("utf-8"))
    result = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def is_in_context(path: str) -> bool:
    """Whether the build context keeps `path` under the dockerignore allow-list."""
    kept = True
    for raw in DOCKERIGNORE.read_text("utf-8").splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negated = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(path, pattern) or path.startswith(pattern + "/"):
            kept = negated
    return kept


def test_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint") or str(
        Path(sys.executable).with_name("hadolint")
    )

    result = subprocess.run(
        [hadolint, str(DOCKERFILE)], capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_every_copied_path_exists_and_is_in_the_build_context() -> None:
    sources = []
    for keyword, rest in instructions():
        if keyword == "COPY" and "--from=" not in rest:
            *paths, _destination = rest.split()
            sources.extend(paths)

    assert "services/router/llm_router" in sources
    assert "services/router/triton/model_repository" in sources
    for source in sources:
        assert (ROOT / source).exists(), source
        assert is_in_context(source), f"{source} is excluded by {DOCKERIGNORE.name}"
    assert not is_in_context("services/router/triton/model_repository/x/__pycache__")


def test_base_image_python_is_one_the_router_supports() -> None:
    args = dict(
        rest.split("=", 1) for keyword, rest in instructions() if keyword == "ARG"
    )
    image = args["TRITON_IMAGE"]
    env = " ".join(rest for keyword, rest in instructions() if keyword == "ENV")
    site = re.search(r"PYTHONPATH=(\S+)", env)
    project = tomllib.loads((ROOT / "services/router/pyproject.toml").read_text())
    minimum = project["project"]["requires-python"].removeprefix(">=")

    assert re.fullmatch(r"nvcr\.io/nvidia/tritonserver:\d\d\.\d\d-py3", image), image
    # 24.12 ships Python 3.12 (Ubuntu 24.04); 22.04-based releases ship 3.10.
    assert tuple(map(int, image.split(":")[1][:5].split("."))) >= (24, 12)
    assert site is not None
    assert site.group(1) == "/opt/llm-router/lib/python3.12/site-packages"
    assert tuple(map(int, minimum.split("."))) <= (3, 12), minimum
    assert "UV_PROJECT_ENVIRONMENT=/opt/llm-router" in env


def test_image_checks_the_classifier_at_build_time_and_serves_models() -> None:
    runs = [rest for keyword, rest in instructions() if keyword == "RUN"]
    cmd = [rest for keyword, rest in instructions() if keyword == "CMD"][-1]
    user = [rest for keyword, rest in instructions() if keyword == "USER"][-1]

    assert any("build_classifier(" in run for run in runs), runs
    assert "--model-repository=/models" in cmd
    assert user.split(":")[0] not in {"0", "root"}, user
