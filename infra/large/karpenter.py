"""Karpenter v1: identity, interruption queue, charts, node classes and pools.

The `karpenter-crd` chart goes first; the controller chart (with its own copy
of the CRDs skipped) and every `EC2NodeClass` and `NodePool` depend on it. A
custom resource declared in the same run as its CRD otherwise fails to
resolve (pulumi/pulumi-kubernetes#3188).

Each in-cluster tier gets its own GPU node class and pools, so GPU nodes carry
the tier's `Tier` tag (Cost Explorer and AWS Budgets split GPU spend by tier)
and each tier's `limits` are its own spend ceiling. Spot comes first; an
on-demand pool with a lower weight takes over only when Spot has no capacity.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.iam import assume_role_policy
from infra.large.cluster import DISCOVERY_TAG, NODE_POLICIES, SYSTEM_LABEL
from infra.large.config import LargeConfig
from infra.large.identity import RoleSpec, ServiceAccountRef, declare_pod_role
from infra.large.karpenter_policy import controller_policy

CHART_REPOSITORY = "oci://public.ecr.aws/karpenter"
CHART_VERSION = "1.8.1"
NAMESPACE = "kube-system"
SERVICE_ACCOUNT = "karpenter"
GPU_RESOURCE = "nvidia.com/gpu"
GPU_TAINT = {"key": GPU_RESOURCE, "value": "true", "effect": "NoSchedule"}
POOL_LABEL = "llm-router.dev/pool"
TIER_LABEL = "llm-router.dev/tier"
CPU_POOL = "cpu"
SPOT_WEIGHT = 50
ON_DEMAND_WEIGHT = 10
# Pods reach AWS through Pod Identity or IRSA, never through the node's role:
# a hop limit of 1 keeps IMDS answers from reaching any pod's network
# namespace (the Pod Identity agent runs on the host network, one hop away).
IMDS_HOP_LIMIT = 1
ROOT_VOLUME_GI = {"gpu": 200, "cpu": 50}
SSM_POLICY = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
# What Karpenter reacts to (its reference setup): each rule feeds the queue.
INTERRUPTION_EVENTS: dict[str, dict[str, list[str]]] = {
    "spot-interruption": {
        "source": ["aws.ec2"],
        "detail-type": ["EC2 Spot Instance Interruption Warning"],
    },
    "rebalance": {
        "source": ["aws.ec2"],
        "detail-type": ["EC2 Instance Rebalance Recommendation"],
    },
    "instance-state-change": {
        "source": ["aws.ec2"],
        "detail-type": ["EC2 Instance State-change Notification"],
    },
    "scheduled-change": {
        "source": ["aws.health"],
        "detail-type": ["AWS Health Event"],
    },
}


@dataclass(frozen=True)
class KarpenterArgs:
    """The cluster Karpenter serves and the pools it offers."""

    cluster_name: str
    large: LargeConfig
    provider: k8s.Provider
    ready: Sequence[pulumi.Resource]
    region: str
    tags: Mapping[str, str]


class Karpenter(pulumi.ComponentResource):
    """Karpenter's AWS side, its two charts, and the node classes and pools."""

    node_role: aws.iam.Role
    queue: aws.sqs.Queue
    crds: k8s.helm.v4.Chart
    controller: k8s.helm.v4.Chart
    node_pools: list[k8s.apiextensions.CustomResource]

    def __init__(
        self,
        name: str,
        args: KarpenterArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("llmrouter:index:Karpenter", name, None, opts)
        self._name = name
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        self._account = aws.get_caller_identity_output(opts=invoke).account_id
        self._partition = aws.get_partition_output(opts=invoke).partition

        self.node_role = self._declare_node_role()
        self.queue = self._declare_interruption_queue()
        controller_role = self._declare_controller_role()
        self.crds, self.controller = self._declare_charts(controller_role)
        self.node_pools = self._declare_pools()

        self.register_outputs(
            {
                "nodeRoleArn": self.node_role.arn,
                "interruptionQueueUrl": self.queue.url,
            }
        )

    def _declare_node_role(self) -> aws.iam.Role:
        args = self._args
        role = aws.iam.Role(
            f"{self._name}-node-role",
            description=f"Nodes Karpenter launches in {args.cluster_name}.",
            assume_role_policy=assume_role_policy("ec2.amazonaws.com"),
            tags=dict(args.tags),
            opts=self._child,
        )
        for arn in (*NODE_POLICIES, SSM_POLICY):
            aws.iam.RolePolicyAttachment(
                f"{self._name}-node-{arn.rsplit('/', 1)[-1]}",
                role=role.name,
                policy_arn=arn,
                opts=self._child,
            )
        # Nodes join through an access entry (API authentication mode).
        aws.eks.AccessEntry(
            f"{self._name}-node-access",
            cluster_name=args.cluster_name,
            principal_arn=role.arn,
            type="EC2_LINUX",
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.ready)),
        )
        return role

    def _declare_interruption_queue(self) -> aws.sqs.Queue:
        args = self._args
        queue = aws.sqs.Queue(
            f"{self._name}-interruptions",
            name=f"{args.cluster_name}-karpenter",
            # An interruption notice is useless after its two minutes.
            message_retention_seconds=300,
            sqs_managed_sse_enabled=True,
            tags=dict(args.tags),
            opts=self._child,
        )
        aws.sqs.QueuePolicy(
            f"{self._name}-interruptions-policy",
            queue_url=queue.url,
            policy=queue.arn.apply(_queue_policy),
            opts=self._child,
        )
        for event, pattern in INTERRUPTION_EVENTS.items():
            rule = aws.cloudwatch.EventRule(
                f"{self._name}-{event}",
                description=f"Karpenter interruption handling: {event}.",
                event_pattern=json.dumps(pattern, sort_keys=True),
                tags=dict(args.tags),
                opts=self._child,
            )
            aws.cloudwatch.EventTarget(
                f"{self._name}-{event}",
                rule=rule.name,
                arn=queue.arn,
                target_id="KarpenterInterruptionQueue",
                opts=self._child,
            )
        return queue

    def _declare_controller_role(self) -> aws.iam.Role:
        args = self._args
        document = pulumi.Output.all(
            self._account, self._partition, self.queue.arn, self.node_role.arn
        ).apply(
            lambda values: json.dumps(
                controller_policy(
                    cluster_name=args.cluster_name,
                    region=args.region,
                    account=values[0],
                    partition=values[1],
                    queue_arn=values[2],
                    node_role_arn=values[3],
                ),
                sort_keys=True,
            )
        )
        return declare_pod_role(
            f"{self._name}-controller",
            RoleSpec(
                account=ServiceAccountRef(NAMESPACE, SERVICE_ACCOUNT),
                extra_policies=[document],
                tags=args.tags,
            ),
            cluster_name=args.cluster_name,
            parent=self,
            depends_on=list(args.ready),
        )

    def _declare_charts(
        self, role: aws.iam.Role
    ) -> tuple[k8s.helm.v4.Chart, k8s.helm.v4.Chart]:
        args = self._args
        on_cluster = pulumi.ResourceOptions(
            parent=self, provider=args.provider, depends_on=list(args.ready)
        )
        crds = k8s.helm.v4.Chart(
            f"{self._name}-crd",
            chart=f"{CHART_REPOSITORY}/karpenter-crd",
            version=CHART_VERSION,
            namespace=NAMESPACE,
            opts=on_cluster,
        )
        controller = k8s.helm.v4.Chart(
            f"{self._name}-controller",
            chart=f"{CHART_REPOSITORY}/karpenter",
            version=CHART_VERSION,
            namespace=NAMESPACE,
            # The CRDs belong to the chart above, which upgrades them.
            skip_crds=True,
            values={
                "settings": {
                    "clusterName": args.cluster_name,
                    "interruptionQueue": self.queue.name,
                },
                "serviceAccount": {"name": SERVICE_ACCOUNT},
                "replicas": 2,
                # Karpenter must not run on nodes it manages.
                "nodeSelector": dict(SYSTEM_LABEL),
                "controller": {
                    # Set, not discovered: IMDS is out of reach of pods on
                    # Karpenter's own nodes (hop limit 1).
                    "env": [{"name": "AWS_REGION", "value": args.region}],
                    "resources": {
                        "requests": {"cpu": "250m", "memory": "512Mi"},
                        "limits": {"cpu": "1", "memory": "1Gi"},
                    },
                },
                # Keeps the role ARN in the chart's inputs, so a new role
                # restarts the controller with it.
                "podAnnotations": {"llm-router.dev/role-arn": role.arn},
            },
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=args.provider,
                depends_on=[*args.ready, crds, role],
            ),
        )
        return crds, controller

    def _declare_pools(self) -> list[k8s.apiextensions.CustomResource]:
        large = self._args.large
        pools = []
        cpu_class = self._declare_node_class(CPU_POOL, tier="shared", kind="cpu")
        pools.append(self._declare_cpu_pool(cpu_class))
        for tier in large.nim_tiers:
            node_class = self._declare_node_class(
                f"gpu-{tier.tier}", tier=tier.tier, kind="gpu"
            )
            pools.append(self._declare_gpu_pool(tier.tier, node_class, spot=True))
            pools.append(self._declare_gpu_pool(tier.tier, node_class, spot=False))
        if large.triton_gpu:
            node_class = self._declare_node_class(
                "gpu-classifier", tier="classifier", kind="gpu"
            )
            pools.append(self._declare_gpu_pool("classifier", node_class, spot=True))
        return pools

    def _declare_node_class(
        self, name: str, *, tier: str, kind: str
    ) -> k8s.apiextensions.CustomResource:
        args = self._args
        discovery = [{"tags": {DISCOVERY_TAG: args.cluster_name}}]
        return k8s.apiextensions.CustomResource(
            f"{self._name}-class-{name}",
            api_version="karpenter.k8s.aws/v1",
            kind="EC2NodeClass",
            metadata={"name": name},
            spec={
                "role": self.node_role.name,
                "amiSelectorTerms": [{"alias": args.large.ami_alias}],
                "subnetSelectorTerms": discovery,
                "securityGroupSelectorTerms": discovery,
                "metadataOptions": {
                    "httpEndpoint": "enabled",
                    "httpProtocolIPv6": "disabled",
                    "httpTokens": "required",
                    "httpPutResponseHopLimit": IMDS_HOP_LIMIT,
                },
                "blockDeviceMappings": [
                    {
                        "deviceName": "/dev/xvda",
                        "ebs": {
                            "volumeSize": f"{ROOT_VOLUME_GI[kind]}Gi",
                            "volumeType": "gp3",
                            "encrypted": True,
                            "deleteOnTermination": True,
                        },
                    }
                ],
                "tags": {**args.tags, "Tier": tier},
            },
            opts=self._on_crds(),
        )

    def _declare_gpu_pool(
        self,
        tier: str,
        node_class: k8s.apiextensions.CustomResource,
        *,
        spot: bool,
    ) -> k8s.apiextensions.CustomResource:
        gpu = self._args.large.gpu
        capacity = "spot" if spot else "on-demand"
        name = f"gpu-{capacity}-{tier}"
        limits = (
            {
                "cpu": str(gpu.spot_max_cpu),
                "memory": f"{gpu.spot_max_memory_gi}Gi",
                GPU_RESOURCE: str(gpu.spot_max_gpus),
            }
            if spot
            else {GPU_RESOURCE: str(gpu.on_demand_max_gpus)}
        )
        requirements = [
            _requirement("karpenter.sh/capacity-type", [capacity]),
            _requirement("karpenter.k8s.aws/instance-family", list(gpu.families)),
            _requirement("kubernetes.io/arch", ["amd64"]),
            _requirement("kubernetes.io/os", ["linux"]),
        ]
        return self._declare_pool(
            name,
            node_class,
            class_name=f"gpu-{tier}",
            weight=SPOT_WEIGHT if spot else ON_DEMAND_WEIGHT,
            labels={POOL_LABEL: "gpu", TIER_LABEL: tier},
            taints=[GPU_TAINT],
            requirements=requirements,
            limits=limits,
            # Loading a model takes minutes: only empty GPU nodes go, and
            # only after they have stayed empty for a while.
            disruption={
                "consolidationPolicy": "WhenEmpty",
                "consolidateAfter": gpu.consolidate_after,
                "budgets": [{"nodes": "1"}],
            },
        )

    def _declare_cpu_pool(
        self, node_class: k8s.apiextensions.CustomResource
    ) -> k8s.apiextensions.CustomResource:
        large = self._args.large
        return self._declare_pool(
            CPU_POOL,
            node_class,
            class_name=CPU_POOL,
            weight=SPOT_WEIGHT,
            labels={POOL_LABEL: CPU_POOL},
            taints=[],
            requirements=[
                _requirement("karpenter.sh/capacity-type", ["spot", "on-demand"]),
                _requirement(
                    "karpenter.k8s.aws/instance-family", list(large.cpu_families)
                ),
                # The router image is arm64, the Triton image amd64.
                _requirement("kubernetes.io/arch", ["arm64", "amd64"]),
                _requirement("kubernetes.io/os", ["linux"]),
            ],
            limits={"cpu": str(large.cpu_max_cpu)},
            disruption={
                "consolidationPolicy": "WhenEmptyOrUnderutilized",
                "consolidateAfter": "1m",
                "budgets": [{"nodes": "10%"}],
            },
        )

    def _declare_pool(
        self,
        name: str,
        node_class: k8s.apiextensions.CustomResource,
        *,
        class_name: str,
        weight: int,
        labels: Mapping[str, str],
        taints: list[Mapping[str, str]],
        requirements: list[dict[str, Any]],
        limits: Mapping[str, str],
        disruption: Mapping[str, Any],
    ) -> k8s.apiextensions.CustomResource:
        template_spec: dict[str, Any] = {
            "nodeClassRef": {
                "group": "karpenter.k8s.aws",
                "kind": "EC2NodeClass",
                "name": class_name,
            },
            "requirements": requirements,
            # Nodes are replaced at least monthly, picking up a new AMI pin.
            "expireAfter": "720h",
        }
        if taints:
            template_spec["taints"] = taints
        return k8s.apiextensions.CustomResource(
            f"{self._name}-pool-{name}",
            api_version="karpenter.sh/v1",
            kind="NodePool",
            metadata={"name": name},
            spec={
                "weight": weight,
                "template": {
                    "metadata": {"labels": dict(labels)},
                    "spec": template_spec,
                },
                "limits": dict(limits),
                "disruption": dict(disruption),
            },
            opts=self._on_crds(node_class),
        )

    def _on_crds(self, *also: pulumi.Resource) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(
            parent=self,
            provider=self._args.provider,
            depends_on=[self.crds, self.controller, *also],
        )


def _requirement(key: str, values: list[str]) -> dict[str, Any]:
    return {"key": key, "operator": "In", "values": values}


def _queue_policy(queue_arn: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "EventBridgeDelivers",
                    "Effect": "Allow",
                    "Principal": {
                        "Service": ["events.amazonaws.com", "sqs.amazonaws.com"]
                    },
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                },
                {
                    "Sid": "DenyPlainHttp",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "sqs:*",
                    "Resource": queue_arn,
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                },
            ],
        },
        sort_keys=True,
    )
