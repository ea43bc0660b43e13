"""A policy mixing a NIM tier, an external endpoint and Bedrock deploys each right."""

from __future__ import annotations

import json

import pytest
from large_support import DEPLOYMENT, environment, named

from infra.mocking import ProgramRun, run_program

MIXED_POLICY = "tests/infra/large/fixtures/mixed_policy.yaml"


@pytest.fixture(scope="module")
def mixed_run() -> ProgramRun:
    """The large stack deploying the mixed policy."""
    return run_program(
        "large",
        {
            "policyFile": MIXED_POLICY,
            # The stack file's entries for medium and large stay; unused.
            "nimImages": [
                "small=nvcr.io/nim/meta/llama-3.1-8b-instruct:1.3.3",
                "large=nvcr.io/nim/meta/llama-3.3-70b-instruct:1.8.2",
            ],
        },
    )


def test_only_the_in_cluster_tier_gets_a_nim_and_gpu_pools(
    mixed_run: ProgramRun,
) -> None:
    [service] = mixed_run.of_type("kubernetes:apps.nvidia.com/v1alpha1:NIMService")
    pools = {
        p.inputs["metadata"]["name"]
        for p in mixed_run.of_type("kubernetes:karpenter.sh/v1:NodePool")
    }
    namespaces = {
        n.inputs["metadata"]["name"]
        for n in mixed_run.of_type("kubernetes:core/v1:Namespace")
    }

    assert service.inputs["metadata"] == {"name": "nim-small", "namespace": "models"}
    assert pools == {"cpu", "gpu-spot-small", "gpu-on-demand-small"}
    assert {"models", "llm-router"} <= namespaces


def test_the_bedrock_tier_is_invoked_through_its_own_profile(
    mixed_run: ProgramRun,
) -> None:
    [profile] = mixed_run.of_type("aws:bedrock/inferenceProfile:InferenceProfile")
    env = environment(named(mixed_run, DEPLOYMENT, "llm-router"))
    [document] = [
        json.loads(r.inputs["policy"])
        for r in mixed_run.of_type("aws:iam/rolePolicy:RolePolicy")
        if r.name.startswith("llmr-large-svc-pod-policy-")
    ]

    assert profile.inputs["tags"]["Tier"] == "large"
    assert json.loads(env["LLM_ROUTER_TIER_TARGETS"]) == {
        "large": profile.outputs["arn"]
    }
    assert document["Statement"][0]["Resource"] == [profile.outputs["arn"]]


def test_alarms_cover_every_tier_whatever_serves_it(mixed_run: ProgramRun) -> None:
    alarms = {
        a.name for a in mixed_run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    }

    for tier in ("small", "medium", "large"):
        assert f"llmr-large-cost-{tier}-cost-hourly" in alarms
    assert "llmr-large-cost-large-bedrock-throttles" in alarms
    assert "llmr-large-cost-small-bedrock-throttles" not in alarms
