"""What the infra tests share: fixture paths and readers of mocked resources."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pulumi.runtime import rpc

from infra.mocking import MockedResource, ProgramRun

FIXTURES = Path(__file__).resolve().parent / "fixtures"
FIXTURE_POLICY = "tests/infra/fixtures/bedrock_policy.yaml"
BAD_POLICY = "tests/infra/fixtures/bad_policy.yaml"
POLICY_TYPES = ("aws:iam/rolePolicy:RolePolicy", "aws:iam/policy:Policy")


def policy_documents(run: ProgramRun) -> list[tuple[MockedResource, dict[str, Any]]]:
    """Every IAM policy document the stack declares, parsed."""
    return [
        (resource, json.loads(resource.inputs["policy"]))
        for resource in run.resources
        if resource.type in POLICY_TYPES
    ]


def as_list(value: Any) -> list[Any]:
    """IAM lets a single action or resource stand alone; make it a list."""
    return value if isinstance(value, list) else [value]


def lambda_environment(run: ProgramRun) -> dict[str, str]:
    """The router function's environment variables."""
    function = run.one("aws:lambda/function:Function")
    return dict(function.inputs["environment"]["variables"])


def container(run: ProgramRun) -> dict[str, Any]:
    """The router's container definition in the ECS task definition."""
    task = run.one("aws:ecs/taskDefinition:TaskDefinition")
    definitions: list[dict[str, Any]] = json.loads(task.inputs["containerDefinitions"])
    return definitions[0]


def container_environment(run: ProgramRun) -> dict[str, str]:
    """The router container's plain environment variables."""
    return {item["name"]: item["value"] for item in container(run)["environment"]}


def by_name(resources: list[MockedResource]) -> dict[str, MockedResource]:
    """Resources keyed by logical name."""
    return {resource.name: resource for resource in resources}


def secret_value(value: Any) -> Any:
    """The value inside a secret input; fails if the input was not secret."""
    assert isinstance(value, dict), f"expected a secret, got {value!r}"
    assert rpc._special_sig_key in value, f"expected a secret, got {value!r}"
    assert value[rpc._special_sig_key] == rpc._special_secret_sig, value
    return value["value"]
