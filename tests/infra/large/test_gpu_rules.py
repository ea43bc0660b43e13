"""The policy pack's GPU rules, as pure functions and on the large stack."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from large_support import NODE_POOL

from infra.mocking import ProgramRun, is_taggable
from infra.policy_pack import rules
from infra.policy_pack.gpu_rules import (
    GPU_RULES,
    check_gpu_instance_families,
    check_gpu_pool_limits,
)

GOOD_POOL: dict[str, Any] = {
    "metadata": {"name": "gpu"},
    "spec": {
        "template": {
            "spec": {
                "taints": [{"key": "nvidia.com/gpu", "effect": "NoSchedule"}],
                "requirements": [
                    {
                        "key": "karpenter.k8s.aws/instance-family",
                        "operator": "In",
                        "values": ["g5", "g6"],
                    }
                ],
            }
        },
        "limits": {"nvidia.com/gpu": "8"},
    },
}


def pool(**changes: Any) -> dict[str, Any]:
    """The good pool with `limits` or `requirements` replaced."""
    found = copy.deepcopy(GOOD_POOL)
    if "limits" in changes:
        found["spec"]["limits"] = changes["limits"]
    if "requirements" in changes:
        found["spec"]["template"]["spec"]["requirements"] = changes["requirements"]
    return found


def test_a_bounded_pool_of_allowed_families_passes() -> None:
    assert check_gpu_pool_limits(NODE_POOL, GOOD_POOL) == []
    assert check_gpu_instance_families(NODE_POOL, GOOD_POOL) == []


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({}, "has no positive nvidia.com/gpu limit (got None)"),
        ({"cpu": "64"}, "has no positive nvidia.com/gpu limit"),
        ({"nvidia.com/gpu": "0"}, "(got '0')"),
        ({"nvidia.com/gpu": "lots"}, "(got 'lots')"),
        ({"nvidia.com/gpu": 65}, "allows 65 GPUs, above the kit's 64"),
    ],
)
def test_a_gpu_pool_without_a_sane_gpu_limit_is_refused(
    limits: dict[str, Any], message: str
) -> None:
    [violation] = check_gpu_pool_limits(NODE_POOL, pool(limits=limits))

    assert message in violation
    assert "'gpu'" in violation


@pytest.mark.parametrize(
    ("requirements", "message"),
    [
        ([], "does not pin karpenter.k8s.aws/instance-family"),
        (
            [
                {
                    "key": "karpenter.k8s.aws/instance-family",
                    "operator": "NotIn",
                    "values": ["t3"],
                }
            ],
            "with one 'In' requirement",
        ),
        (
            [
                {
                    "key": "karpenter.k8s.aws/instance-family",
                    "operator": "In",
                    "values": ["g5", "p3dn"],
                }
            ],
            "allows families ['p3dn']; accepted: g4dn, g5",
        ),
    ],
)
def test_a_gpu_pool_with_unlisted_families_is_refused(
    requirements: list[dict[str, Any]], message: str
) -> None:
    [violation] = check_gpu_instance_families(
        NODE_POOL, pool(requirements=requirements)
    )

    assert message in violation


def test_a_pool_selecting_gpus_by_count_counts_as_a_gpu_pool() -> None:
    selects = pool(
        limits={"cpu": "10"},
        requirements=[
            {
                "key": "karpenter.k8s.aws/instance-gpu-count",
                "operator": "Gt",
                "values": ["0"],
            }
        ],
    )
    selects["spec"]["template"]["spec"].pop("taints")

    assert check_gpu_pool_limits(NODE_POOL, selects)
    assert check_gpu_instance_families(NODE_POOL, selects)


def test_cpu_pools_and_other_resources_are_out_of_scope() -> None:
    cpu = pool(limits={"cpu": "64"}, requirements=[])
    cpu["spec"]["template"]["spec"].pop("taints")

    assert check_gpu_pool_limits(NODE_POOL, cpu) == []
    assert check_gpu_instance_families(NODE_POOL, cpu) == []
    assert check_gpu_pool_limits("aws:s3/bucket:Bucket", GOOD_POOL) == []


def test_every_pool_of_the_large_stack_passes_both_rules(large_run: ProgramRun) -> None:
    pools = large_run.of_type(NODE_POOL)

    assert len(pools) == 7
    for resource in pools:
        for name, (rule, _) in GPU_RULES.items():
            assert rule(resource.type, resource.inputs) == [], (name, resource.name)


def test_the_tag_rule_covers_every_taggable_type_of_the_large_stack(
    large_run: ProgramRun,
) -> None:
    declared = {r.type for r in large_run.resources if is_taggable(r.type)}

    assert declared - rules.TAGGABLE_TYPES == set()
    for resource in large_run.resources:
        assert rules.check_required_tags(resource.type, resource.inputs) == [], (
            resource.name
        )
