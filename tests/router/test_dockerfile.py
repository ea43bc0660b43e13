"""Static checks of the router image (no Docker engine runs here).

hadolint runs in `scripts/test`; these tests hold the properties the stacks
and the security review rely on, and rehearse the image's dependency step
with uv against the lockfile.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
DOCKERFILE = ROOT / "services/router/Dockerfile"
DOCKERIGNORE = ROOT / "services/router/Dockerfile.dockerignore"
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
BUILD_TOOLS = ("gcc", "g++", "make", "build-essential", "uv ", "/uv", "pip install")


@dataclass
class Stage:
    """One `FROM` stage: its base image, name and instructions."""

    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args_of(self, keyword: str) -> list[str]:
        """The arguments of every instruction with this keyword."""
        return [args for kw, args in self.instructions if kw == keyword]


def read_instructions(path: Path) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) pairs, with comments dropped and continuations joined."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    pairs = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        pairs.append((keyword.upper(), args.strip()))
    return pairs


def read_stages(path: Path = DOCKERFILE) -> list[Stage]:
    """The Dockerfile's stages in order."""
    stages: list[Stage] = []
    for keyword, args in read_instructions(path):
        if keyword == "FROM":
            parts = args.split()
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(parts[0], name))
        else:
            stages[-1].instructions.append((keyword, args))
    return stages


def read_copy_from(args: str) -> str | None:
    """The `--from=` source of a COPY, if any."""
    match = re.search(r"--from=(\S+)", args)
    return match.group(1) if match else None


def test_every_image_is_pinned_by_digest() -> None:
    stages = read_stages()
    names = {s.name for s in stages}

    images = [s.base for s in stages if s.base not in names]
    images += [
        source
        for s in stages
        for args in s.args_of("COPY")
        if (source := read_copy_from(args)) and source not in names
    ]

    assert images, "the Dockerfile names no image"
    for image in images:
        assert DIGEST.search(image), f"{image} is not pinned by @sha256 digest"
        assert ":" in image.split("@")[0], f"{image} should keep its tag as a label"


def test_the_build_is_multi_stage_on_slim_python_311() -> None:
    stages = read_stages()
    final = stages[-1]

    assert len(stages) >= 2
    assert final.base.startswith("python:3.11-slim@"), final.base
    build = next(s for s in stages if any("uv sync" in a for a in s.args_of("RUN")))
    assert build is not final, "dependencies must be resolved in a build stage"
    assert build.base == final.base, (
        "the venv must run on the interpreter it was built for"
    )


def test_the_final_stage_runs_as_a_non_root_user() -> None:
    final = read_stages()[-1]

    users = final.args_of("USER")

    assert users, "the final stage sets no USER"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}, users
    last_user = max(i for i, (kw, _) in enumerate(final.instructions) if kw == "USER")
    later = [kw for kw, _ in final.instructions[last_user:]]
    assert "RUN" not in later, "nothing may run as root after USER"
    assert "COPY" not in later, "files copied after USER belong to root"


def test_the_final_stage_has_no_build_tools() -> None:
    stages = read_stages()
    final = stages[-1]
    uv_stage = next(s.name for s in stages if s.base.startswith("ghcr.io/astral-sh/uv"))

    for args in final.args_of("RUN"):
        for tool in BUILD_TOOLS:
            assert tool not in args, f"final stage runs {tool!r}: {args}"
        assert "apt-get install" not in args, args
    assert "pip uninstall" in " ".join(final.args_of("RUN")), "pip should be removed"
    for args in final.args_of("COPY"):
        assert read_copy_from(args) != uv_stage, (
            f"uv copied into the final stage: {args}"
        )


def test_healthcheck_and_port_need_no_extra_tools() -> None:
    final = read_stages()[-1]

    (check,) = final.args_of("HEALTHCHECK")
    assert "python" in check, check
    assert "urllib" in check, check
    assert "127.0.0.1:8080/healthz" in check, check
    assert "curl" not in check, check
    assert "wget" not in check, check
    assert final.args_of("EXPOSE") == ["8080"]
    env = " ".join(final.args_of("ENV"))
    assert "LLM_ROUTER_HOST=0.0.0.0" in env, "the server must listen beyond loopback"
    assert "LLM_ROUTER_PORT=8080" in env


def test_the_lambda_web_adapter_is_an_extension_and_the_entry_point_is_the_cli() -> (
    None
):
    stages = read_stages()
    final = stages[-1]
    adapter = next(s for s in stages if "aws-lambda-adapter" in s.base)

    copies = [a for a in final.args_of("COPY") if read_copy_from(a) == adapter.name]
    assert copies, "the adapter is not copied into the final stage"
    assert copies[0].split()[-1] == "/opt/extensions/lambda-adapter", copies

    entrypoint = final.args_of("ENTRYPOINT")[-1]
    scripts = tomllib.loads((ROOT / "services/router/pyproject.toml").read_text())[
        "project"
    ]["scripts"]
    assert entrypoint == '["llm-router"]', entrypoint
    assert "llm-router" in scripts, scripts
    assert final.args_of("CMD") == ['["serve"]']


def read_allow_list() -> tuple[list[str], list[str]]:
    """The dockerignore's exclusions and `!` re-inclusions."""
    excluded, included = [], []
    for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("!"):
            included.append(line[1:].rstrip("/"))
        else:
            excluded.append(line)
    return excluded, included


def read_context_sources() -> list[str]:
    """Paths the Dockerfile copies from the build context."""
    sources = []
    for stage in read_stages():
        for args in stage.args_of("COPY"):
            if read_copy_from(args) is None:
                sources += [p for p in args.split()[:-1] if not p.startswith("--")]
    return sources


def test_the_dockerignore_admits_exactly_what_the_dockerfile_copies() -> None:
    excluded, included = read_allow_list()
    sources = read_context_sources()

    assert excluded[0] == "*", "the context should be an allow-list"
    for source in sources:
        assert (ROOT / source).exists(), f"COPY source {source} does not exist"
        assert any(
            source == allowed or source.startswith(allowed + "/")
            for allowed in included
        ), f"{source} is copied but excluded from the build context"
    for allowed in included:
        assert allowed in sources, f"{allowed} is in the context but never copied"
    assert any(fnmatch.fnmatch("a/__pycache__", p) for p in excluded)


@pytest.mark.slow
def test_the_dependency_step_installs_a_router_that_starts(tmp_path: Path) -> None:
    """Rehearse the build stage: same context, same uv commands, offline."""
    context = tmp_path / "context"
    for source in read_context_sources():
        target = context / source
        target.parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / source).is_dir():
            shutil.copytree(
                ROOT / source, target, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy2(ROOT / source, target)
    build = next(s for s in read_stages() if s.name == "build")
    commands = [a for a in build.args_of("RUN") if "uv sync" in a]
    venv = tmp_path / "venv"
    env = {
        **os.environ,
        "UV_PROJECT_ENVIRONMENT": str(venv),
        "UV_PYTHON": sys.executable,
        "UV_PYTHON_DOWNLOADS": "never",
    }
    env.pop("VIRTUAL_ENV", None)

    assert len(commands) == 2, commands
    for command in commands:
        argv = [a for a in shlex.split(command) if not a.startswith("--mount=")]
        done = subprocess.run(
            [*argv, "--offline", "--quiet"],
            cwd=context,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr

    installed = {
        p.name.split("-")[0].lower()
        for p in venv.glob("lib/*/site-packages/*.dist-info")
    }
    assert {"fastapi", "uvicorn", "llm_router"} <= installed, installed
    assert not installed & {"pytest", "pulumi", "moto", "ruff", "mypy"}, installed
    probe = subprocess.run(
        [
            str(venv / "bin/python"),
            "-c",
            "from llm_router.app import create_app; create_app(); print('ok')",
        ],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "LLM_ROUTER_CACHE_BACKEND": "memory"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert probe.stdout.strip() == "ok", probe.stderr
