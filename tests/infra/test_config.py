"""Stack config: the schema in Pulumi.yaml, and validation before any resource."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from infra_support import FIXTURE_POLICY

from infra.config import KitConfig, StackConfigError, parse_config
from infra.project import config_schema, project_name, read_project, stack_config

PROJECT = "llm-router-kit"
ROOT = Path(__file__).resolve().parents[2]


def parse(stack: str, **overrides: Any) -> KitConfig:
    """Parse one stack's config as the CLI would hand it over."""
    raw = stack_config(stack, overrides)
    prefix = f"{PROJECT}:"
    bare = {k.removeprefix(prefix): v for k, v in raw.items() if k.startswith(prefix)}
    region = raw.get("aws:region", "us-east-1")
    return parse_config(bare, project=PROJECT, stack=stack, region=region)


def test_project_file_declares_runtime_layout_and_tags() -> None:
    project = read_project()

    assert project["name"] == PROJECT == project_name()
    assert project["runtime"] == {"name": "python", "options": {"toolchain": "uv"}}
    assert project["main"] == "infra/"
    assert project["stackConfigDir"] == "stacks"
    assert project["config"]["pulumi:tags"]["value"]["project"] == PROJECT


def test_every_config_key_has_type_default_and_description() -> None:
    keys = config_schema()

    assert len(keys) >= 20
    for key in keys:
        assert key.type in {"string", "integer", "boolean", "array"}, key
        assert key.default is not None, key
        assert len(key.description) > 10, key
        assert key.name[0].islower(), f"{key.name} is not camelCase"
        assert "_" not in key.name, f"{key.name} is not camelCase"


def test_stack_files_parse_into_their_stack_sizes() -> None:
    small = parse("small")
    medium = parse("medium")

    assert small.size == "small"
    assert medium.size == "medium"
    assert small.tags == {
        "Project": PROJECT,
        "Stack": "small",
        "ManagedBy": "pulumi",
        "CostCenter": "llm-router",
    }
    assert small.alarms.tiers["large"].hourly_cost_usd == 1.0
    assert small.alarms.tiers["small"].hourly_cost_usd == 0.25
    assert medium.medium.certificate_arn.startswith("arn:aws:acm:")


def test_a_missing_key_is_named() -> None:
    with pytest.raises(StackConfigError, match="'policyFile' is not set"):
        parse_config({"stackSize": "small"}, project=PROJECT, stack="s", region="r")


def test_stack_size_defaults_to_the_stack_name_and_rejects_others() -> None:
    assert parse("small", stackSize="").size == "small"

    expected = r"stack name 'dev'.*small, medium, large"
    with pytest.raises(StackConfigError, match=expected):
        parse("dev", policyFile=FIXTURE_POLICY)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"hourlyCostAlarmUsd": ["xl=1"]}, r"'xl=1'.*small, medium, large"),
        ({"dailyCostAlarmUsd": ["small=2"]}, r"tiers \['medium', 'large'\]"),
        ({"hourlyTokenAlarm": ["*=-5"]}, r"hourlyTokenAlarm\[\*\] = '-5'"),
        ({"monthlyBudgetUsd": "50"}, "expected a list of strings"),
        ({"logRetentionDays": 10}, "logRetentionDays = 10; CloudWatch Logs accepts"),
        ({"alarmEmails": ["ops"]}, "'ops', which is not an e-mail address"),
        ({"lambdaReservedConcurrency": 0}, r"= 0; expected a value in \[1..1000\]"),
        ({"imageBuildOnPreview": "maybe"}, "expected true or false"),
    ],
)
def test_bad_values_are_refused_with_the_key_and_the_fix(
    overrides: Mapping[str, Any], message: str
) -> None:
    with pytest.raises(StackConfigError, match=message):
        parse("small", **overrides)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"certificateArn": ""}, "medium stack needs the ARN of an ACM certificate"),
        ({"taskCpu": 300}, "taskCpu = 300; Fargate accepts 256, 512"),
        ({"taskMemoryMb": 8192}, "with taskCpu 512 Fargate accepts 1024-4096"),
        ({"minTasks": 4, "maxTasks": 2}, r"maxTasks \(2\) is below minTasks \(4\)"),
        ({"ingressCidrs": ["10.0.0.0/33"]}, "'10.0.0.0/33' in ingressCidrs"),
        ({"natGateways": "None"}, "natGateways = 'None'; use one of Single, OnePerAz"),
    ],
)
def test_medium_only_settings_are_checked_for_the_medium_stack(
    overrides: Mapping[str, Any], message: str
) -> None:
    with pytest.raises(StackConfigError, match=message):
        parse("medium", **overrides)


def test_per_tier_values_fall_back_to_the_wildcard_entry() -> None:
    config = parse("small", hourlyCostAlarmUsd=["medium=0.7", "*=0.1"])

    hourly = {tier: t.hourly_cost_usd for tier, t in config.alarms.tiers.items()}
    assert hourly == {"small": 0.1, "medium": 0.7, "large": 0.1}


class _Recording(dict[str, str]):
    """Raw config that remembers which keys the program read."""

    def __init__(self, values: Mapping[str, str]) -> None:
        super().__init__(values)
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.read.add(key)
        return super().__getitem__(key)


def test_every_key_the_program_reads_is_declared_and_documented() -> None:
    raw = stack_config("medium")
    prefix = f"{PROJECT}:"
    recording = _Recording(
        {k.removeprefix(prefix): v for k, v in raw.items() if k.startswith(prefix)}
    )
    parse_config(recording, project=PROJECT, stack="medium", region="us-east-1")

    declared = {key.name for key in config_schema()}
    guide = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    assert len(recording.read) >= 25
    for key in sorted(recording.read):
        assert key in declared, f"{key} is read but not declared in Pulumi.yaml"
        assert f"| `{key}` |" in guide, f"{key} is missing from docs/deploy.md"
