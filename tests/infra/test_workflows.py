"""The CI workflows: pinned actions, tests before previews, no secrets for forks."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

WORKFLOWS = Path(__file__).resolve().parents[2] / ".github" / "workflows"
PINNED = re.compile(
    r"^\s*(?:-\s+)?uses: [\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$"
)


def load(name: str) -> dict[str, Any]:
    """A workflow file as data (YAML's `on:` key loads as True)."""
    data: dict[str, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    return data


def step_index(steps: list[dict[str, Any]], uses_prefix: str) -> int:
    """Position of the first step that uses this action."""
    return next(
        i for i, s in enumerate(steps) if s.get("uses", "").startswith(uses_prefix)
    )


@pytest.mark.parametrize("name", ["preview.yml", "up.yml"])
def test_every_action_is_pinned_by_commit_with_its_version(name: str) -> None:
    lines = [
        line for line in (WORKFLOWS / name).read_text().splitlines() if "uses:" in line
    ]

    assert lines, name
    for line in lines:
        assert PINNED.match(line), f"{name}: {line.strip()}"


def test_preview_runs_on_pull_requests_for_each_stack_tests_first() -> None:
    workflow = load("preview.yml")
    job = workflow["jobs"]["preview"]
    steps = job["steps"]
    tests = next(i for i, s in enumerate(steps) if "pytest" in s.get("run", ""))
    preview = steps[step_index(steps, "pulumi/actions@")]

    assert "pull_request" in workflow[True]
    assert job["strategy"]["matrix"]["stack"] == ["small", "medium", "large"]
    assert tests < step_index(steps, "pulumi/auth-actions@")
    assert step_index(steps, "aws-actions/configure-aws-credentials@") < steps.index(
        preview
    )
    assert preview["with"]["command"] == "preview"
    assert preview["with"]["comment-on-pr"] is True
    assert preview["with"]["diff"] is True
    assert preview["with"]["policyPacks"] == "infra/policy_pack"
    assert job["permissions"]["id-token"] == "write"


def test_forks_get_no_credentials_and_no_secrets_are_used() -> None:
    text = (WORKFLOWS / "preview.yml").read_text()
    steps = load("preview.yml")["jobs"]["preview"]["steps"]

    assert "secrets." not in text
    for prefix in ("pulumi/auth-actions@", "aws-actions/", "pulumi/actions@"):
        assert steps[step_index(steps, prefix)]["if"] == "env.FROM_FORK == 'false'"


def test_up_runs_on_main_behind_the_production_environment() -> None:
    workflow = load("up.yml")
    job = workflow["jobs"]["up"]
    steps = job["steps"]
    up = steps[step_index(steps, "pulumi/actions@")]

    assert workflow[True]["push"]["branches"] == ["main"]
    assert job["environment"] == "production"
    assert up["with"]["command"] == "up"
    assert up["with"]["policyPacks"] == "infra/policy_pack"
    assert workflow["concurrency"]["cancel-in-progress"] is False
