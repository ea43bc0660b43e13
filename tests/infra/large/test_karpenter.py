"""Karpenter under mocks: pools, node classes, interruption queue, CRD order."""

from __future__ import annotations

import json
import re

from large_support import (
    CHART,
    NODE_CLASS,
    NODE_POOL,
    chart,
    named,
    read_large_config,
)

from infra.mocking import MockedResource, ProgramRun

IN_CLUSTER_TIERS = ("small", "medium", "large")


def requirements(pool: MockedResource) -> dict[str, list[str]]:
    """A NodePool's requirements as key -> values (all are `In`)."""
    found = {}
    for item in pool.inputs["spec"]["template"]["spec"]["requirements"]:
        assert item["operator"] == "In", item
        found[item["key"]] = item["values"]
    return found


def test_each_tier_has_a_gpu_spot_pool_with_families_taint_and_limits(
    large_run: ProgramRun,
) -> None:
    for tier in IN_CLUSTER_TIERS:
        pool = named(large_run, NODE_POOL, f"gpu-spot-{tier}")
        spec = pool.inputs["spec"]
        wanted = requirements(pool)

        assert wanted["karpenter.sh/capacity-type"] == ["spot"]
        assert wanted["karpenter.k8s.aws/instance-family"] == ["g5", "g6"]
        assert spec["template"]["spec"]["taints"] == [
            {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}
        ]
        assert spec["limits"] == {
            "cpu": "192",
            "memory": "768Gi",
            "nvidia.com/gpu": "8",
        }
        assert spec["disruption"]["consolidationPolicy"] == "WhenEmpty"
        assert spec["disruption"]["consolidateAfter"] == "10m"
        assert spec["template"]["metadata"]["labels"]["llm-router.dev/tier"] == tier


def test_the_on_demand_fallback_pool_weighs_less_than_spot(
    large_run: ProgramRun,
) -> None:
    for tier in IN_CLUSTER_TIERS:
        spot = named(large_run, NODE_POOL, f"gpu-spot-{tier}").inputs["spec"]
        fallback = named(large_run, NODE_POOL, f"gpu-on-demand-{tier}")

        assert requirements(fallback)["karpenter.sh/capacity-type"] == ["on-demand"]
        assert fallback.inputs["spec"]["weight"] < spot["weight"]
        assert fallback.inputs["spec"]["limits"] == {"nvidia.com/gpu": "2"}
        assert fallback.inputs["spec"]["template"]["spec"]["taints"]


def test_the_cpu_pool_offers_both_architectures_for_router_and_triton(
    large_run: ProgramRun,
) -> None:
    cpu = named(large_run, NODE_POOL, "cpu")

    assert requirements(cpu)["kubernetes.io/arch"] == ["arm64", "amd64"]
    assert cpu.inputs["spec"]["limits"] == {"cpu": "64"}
    assert len(large_run.of_type(NODE_POOL)) == 1 + 2 * len(IN_CLUSTER_TIERS)


def test_node_classes_pin_the_ami_require_imdsv2_and_encrypt_the_root_volume(
    large_run: ProgramRun,
) -> None:
    classes = large_run.of_type(NODE_CLASS)
    assert len(classes) == 1 + len(IN_CLUSTER_TIERS)
    for node_class in classes:
        spec = node_class.inputs["spec"]

        [term] = spec["amiSelectorTerms"]
        assert re.fullmatch(r"al2023@v\d{8}", term["alias"]), term
        assert spec["metadataOptions"]["httpTokens"] == "required"
        assert spec["metadataOptions"]["httpPutResponseHopLimit"] == 1
        [volume] = spec["blockDeviceMappings"]
        assert volume["ebs"]["encrypted"] is True
        assert volume["ebs"]["volumeType"] == "gp3"
        assert spec["role"].endswith("-node-role")
        assert {"Tier", "CostCenter", "Stack"} <= set(spec["tags"])
    tiers = {c.inputs["spec"]["tags"]["Tier"] for c in classes}
    assert tiers == {"shared", *IN_CLUSTER_TIERS}


def test_discovery_tags_select_the_stacks_subnets_and_security_group(
    large_run: ProgramRun,
) -> None:
    tag = large_run.one("aws:ec2/tag:Tag")
    vpc = large_run.one("awsx:ec2:Vpc")
    private = next(s for s in vpc.inputs["subnetSpecs"] if s["type"] == "Private")

    assert tag.inputs["key"] == "karpenter.sh/discovery"
    assert tag.inputs["value"] == "llmr-large"
    assert tag.inputs["resourceId"].startswith("sg-")
    assert private["tags"]["karpenter.sh/discovery"] == "llmr-large"
    for node_class in large_run.of_type(NODE_CLASS):
        for key in ("subnetSelectorTerms", "securityGroupSelectorTerms"):
            assert node_class.inputs["spec"][key] == [
                {"tags": {"karpenter.sh/discovery": "llmr-large"}}
            ]


def test_the_interruption_queue_is_encrypted_and_fed_by_four_rules(
    large_run: ProgramRun,
) -> None:
    queue = large_run.one("aws:sqs/queue:Queue")
    policy = json.loads(
        large_run.one("aws:sqs/queuePolicy:QueuePolicy").inputs["policy"]
    )
    rules = large_run.of_type("aws:cloudwatch/eventRule:EventRule")
    targets = large_run.of_type("aws:cloudwatch/eventTarget:EventTarget")
    queue_arn = queue.outputs["arn"]

    assert queue.inputs["sqsManagedSseEnabled"] is True
    assert queue.inputs["messageRetentionSeconds"] == 300
    [allow] = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    assert "events.amazonaws.com" in allow["Principal"]["Service"]
    assert allow["Action"] == "sqs:SendMessage"
    assert allow["Resource"] == queue_arn
    patterns = {
        (p["source"][0], p["detail-type"][0])
        for p in (json.loads(r.inputs["eventPattern"]) for r in rules)
    }
    assert patterns == {
        ("aws.ec2", "EC2 Spot Instance Interruption Warning"),
        ("aws.ec2", "EC2 Instance Rebalance Recommendation"),
        ("aws.ec2", "EC2 Instance State-change Notification"),
        ("aws.health", "AWS Health Event"),
    }
    assert len(targets) == len(rules)
    assert all(t.inputs["arn"] == queue_arn for t in targets)


def test_the_controller_chart_reads_the_queue_and_waits_for_the_crd_chart(
    large_run: ProgramRun,
) -> None:
    crds = chart(large_run, "karpenter-crd")
    controller = chart(large_run, "karpenter")

    assert crds.inputs["chart"] == "oci://public.ecr.aws/karpenter/karpenter-crd"
    assert controller.inputs["version"] == crds.inputs["version"]
    assert controller.inputs["skipCrds"] is True
    assert controller.inputs["values"]["settings"] == {
        "clusterName": "llmr-large",
        "interruptionQueue": "llmr-large-karpenter",
    }
    assert crds.urn in controller.dependencies
    assert controller.inputs["values"]["controller"]["env"] == [
        {"name": "AWS_REGION", "value": "us-east-1"}
    ]


def test_every_karpenter_custom_resource_depends_on_the_crd_chart(
    large_run: ProgramRun,
) -> None:
    crds = chart(large_run, "karpenter-crd")
    custom = large_run.of_type(NODE_POOL) + large_run.of_type(NODE_CLASS)

    assert custom
    for resource in custom:
        assert crds.urn in resource.dependencies, resource.name


def test_every_other_custom_resource_depends_on_the_chart_defining_it(
    large_run: ProgramRun,
) -> None:
    owners = {
        "apps.nvidia.com": chart(large_run, "k8s-nim-operator"),
        "monitoring.coreos.com": chart(large_run, "kube-prometheus-stack"),
    }
    checked = 0
    for resource in large_run.resources:
        group = resource.type.split(":")[1].split("/")[0]
        if resource.type.startswith("kubernetes:") and group in owners:
            assert owners[group].urn in resource.dependencies, resource.name
            checked += 1
    assert checked >= 6


def test_nodes_join_through_an_ec2_linux_access_entry(large_run: ProgramRun) -> None:
    entry = large_run.one("aws:eks/accessEntry:AccessEntry")
    node_role = next(
        r
        for r in large_run.of_type("aws:iam/role:Role")
        if r.name == "llmr-large-karpenter-node-role"
    )

    assert entry.inputs["type"] == "EC2_LINUX"
    assert entry.inputs["clusterName"] == "llmr-large"
    assert entry.inputs["principalArn"] == node_role.outputs["arn"]


def test_a_chart_count_guards_against_a_silently_dropped_install(
    large_run: ProgramRun,
) -> None:
    charts = sorted(
        r.inputs["chart"].rsplit("/", 1)[-1] for r in large_run.of_type(CHART)
    )

    assert charts == [
        "aws-load-balancer-controller",
        "dcgm-exporter",
        "fluent-bit",
        "k8s-nim-operator",
        "karpenter",
        "karpenter-crd",
        "kube-prometheus-stack",
        "metrics-server",
        "nvidia-device-plugin",
    ]


def test_the_policy_decides_which_tiers_run_in_the_cluster() -> None:
    large = read_large_config()

    assert [t.tier for t in large.nim_tiers] == list(IN_CLUSTER_TIERS)
    assert [t.service for t in large.nim_tiers] == [
        "nim-small",
        "nim-medium",
        "nim-large",
    ]
