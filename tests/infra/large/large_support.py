"""Readers of the large stack's mocked resources, shared by its tests."""

from __future__ import annotations

import re
from typing import Any

from infra.config import parse_config
from infra.large.config import LargeConfig, parse_large_config
from infra.mocking import MockedResource, ProgramRun
from infra.project import stack_config

NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
CHART = "kubernetes:helm.sh/v4:Chart"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
PROMQL_WORDS = frozenset(
    {
        "sum", "avg", "max", "min", "count", "rate", "increase", "irate",
        "histogram_quantile", "by", "without", "and", "or", "unless", "on",
        "ignoring", "group_left", "group_right", "bool", "offset", "printf",
        "topk", "bottomk", "clamp_min", "clamp_max", "abs", "e",
    }
)  # fmt: skip


def named(run: ProgramRun, type_token: str, name: str) -> MockedResource:
    """The resource of this type whose Kubernetes or logical name is `name`."""
    for resource in run.of_type(type_token):
        metadata = resource.inputs.get("metadata") or {}
        if name in (metadata.get("name"), resource.name):
            return resource
    msg = f"no {type_token} named {name!r}"
    raise AssertionError(msg)


def chart(run: ProgramRun, chart_name: str) -> MockedResource:
    """The helm v4 Chart whose chart reference ends with `chart_name`."""
    found = [
        r
        for r in run.of_type(CHART)
        if r.inputs["chart"].endswith(f"/{chart_name}")
        or r.inputs["chart"] == chart_name
    ]
    assert len(found) == 1, [r.inputs["chart"] for r in run.of_type(CHART)]
    return found[0]


def containers(deployment: MockedResource) -> list[dict[str, Any]]:
    """The containers of a Deployment's pod template."""
    pod: dict[str, Any] = deployment.inputs["spec"]["template"]["spec"]
    found: list[dict[str, Any]] = pod["containers"]
    return found


def environment(deployment: MockedResource) -> dict[str, str]:
    """The first container's plain environment variables."""
    return {
        item["name"]: item["value"]
        for item in containers(deployment)[0]["env"]
        if "value" in item
    }


def metric_names(expression: str) -> set[str]:
    """The metric names a PromQL expression reads."""
    text = re.sub(r'"[^"]*"', "", expression)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        following = text[match.end() :].lstrip()[:1]
        if following == "(" or match.group() in PROMQL_WORDS:
            continue
        names.add(match.group())
    return names


def read_large_config() -> LargeConfig:
    """The large stack's validated config, as the program would read it."""
    raw = {
        key.split(":", 1)[1]: value
        for key, value in stack_config("large").items()
        if key.startswith("llm-router-kit:")
    }
    config = parse_config(
        raw, project="llm-router-kit", stack="large", region="us-east-1"
    )
    return parse_large_config(config)
