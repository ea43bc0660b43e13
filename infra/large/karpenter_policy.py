"""Karpenter's controller policy, scoped the way Karpenter's reference policy is.

Every action is named. Writes are limited to resources this cluster's
Karpenter tagged (`kubernetes.io/cluster/<name>: owned` plus a node pool
tag), or to the few ARNs it needs (the interruption queue, the node role,
the cluster). Only reads that EC2 cannot scope take `*`, and those are held
to the stack's region.
"""

from __future__ import annotations

from typing import Any

from infra.iam import sorted_statement

READ_ACTIONS = (
    "ec2:DescribeAvailabilityZones",
    "ec2:DescribeImages",
    "ec2:DescribeInstanceTypeOfferings",
    "ec2:DescribeInstanceTypes",
    "ec2:DescribeInstances",
    "ec2:DescribeLaunchTemplates",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSpotPriceHistory",
    "ec2:DescribeSubnets",
)
LAUNCH_ACTIONS = ("ec2:CreateFleet", "ec2:RunInstances")
QUEUE_ACTIONS = ("sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage")
NODEPOOL_TAG = "karpenter.sh/nodepool"
NODECLASS_TAG = "karpenter.k8s.aws/ec2nodeclass"


def controller_policy(
    *,
    cluster_name: str,
    region: str,
    account: str,
    partition: str,
    queue_arn: str,
    node_role_arn: str,
) -> dict[str, Any]:
    """The IAM document for the Karpenter controller of one cluster."""
    ec2 = f"arn:{partition}:ec2:{region}"
    owned = f"kubernetes.io/cluster/{cluster_name}"
    request_owned = {
        f"aws:RequestTag/{owned}": "owned",
        "aws:RequestTag/eks:eks-cluster-name": cluster_name,
    }
    resource_owned = {f"aws:ResourceTag/{owned}": "owned"}
    profile_arn = f"arn:{partition}:iam::{account}:instance-profile/*"
    launched = [
        f"{ec2}:*:{kind}/*"
        for kind in (
            "fleet",
            "instance",
            "volume",
            "network-interface",
            "launch-template",
            "spot-instances-request",
        )
    ]
    statements: list[dict[str, Any]] = [
        sorted_statement(
            "LaunchFromSharedResources",
            LAUNCH_ACTIONS,
            [
                f"{ec2}::image/*",
                f"{ec2}::snapshot/*",
                f"{ec2}:*:security-group/*",
                f"{ec2}:*:subnet/*",
                f"{ec2}:*:capacity-reservation/*",
            ],
        ),
        sorted_statement(
            "LaunchFromOwnLaunchTemplates",
            LAUNCH_ACTIONS,
            [f"{ec2}:*:launch-template/*"],
            {
                "StringEquals": resource_owned,
                "StringLike": {f"aws:ResourceTag/{NODEPOOL_TAG}": "*"},
            },
        ),
        sorted_statement(
            "CreateOwnedInstances",
            (*LAUNCH_ACTIONS, "ec2:CreateLaunchTemplate"),
            launched,
            {
                "StringEquals": request_owned,
                "StringLike": {f"aws:RequestTag/{NODEPOOL_TAG}": "*"},
            },
        ),
        sorted_statement(
            "TagOnCreate",
            ("ec2:CreateTags",),
            launched,
            {
                "StringEquals": {
                    **request_owned,
                    "ec2:CreateAction": [
                        "CreateFleet",
                        "CreateLaunchTemplate",
                        "RunInstances",
                    ],
                },
                "StringLike": {f"aws:RequestTag/{NODEPOOL_TAG}": "*"},
            },
        ),
        sorted_statement(
            "TagOwnedInstances",
            ("ec2:CreateTags",),
            [f"{ec2}:*:instance/*"],
            {
                "StringEquals": resource_owned,
                "StringLike": {f"aws:ResourceTag/{NODEPOOL_TAG}": "*"},
                "StringEqualsIfExists": {
                    "aws:RequestTag/eks:eks-cluster-name": cluster_name
                },
                "ForAllValues:StringEquals": {
                    "aws:TagKeys": [
                        "eks:eks-cluster-name",
                        "karpenter.sh/nodeclaim",
                        "Name",
                    ]
                },
            },
        ),
        sorted_statement(
            "DeleteOwned",
            ("ec2:DeleteLaunchTemplate", "ec2:TerminateInstances"),
            [f"{ec2}:*:instance/*", f"{ec2}:*:launch-template/*"],
            {
                "StringEquals": resource_owned,
                "StringLike": {f"aws:ResourceTag/{NODEPOOL_TAG}": "*"},
            },
        ),
        # EC2 Describe calls have no resource-level permissions.
        sorted_statement(
            "ReadEc2InRegion",
            READ_ACTIONS,
            ["*"],
            {"StringEquals": {"aws:RequestedRegion": region}},
        ),
        sorted_statement(
            "ReadAmiParameters",
            ("ssm:GetParameter",),
            [f"arn:{partition}:ssm:{region}::parameter/aws/service/*"],
        ),
        # The Price List API has no resource-level permissions.
        sorted_statement("ReadPrices", ("pricing:GetProducts",), ["*"]),
        sorted_statement("ConsumeInterruptionQueue", QUEUE_ACTIONS, [queue_arn]),
        sorted_statement(
            "PassNodeRole",
            ("iam:PassRole",),
            [node_role_arn],
            {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
        ),
        sorted_statement(
            "CreateOwnedInstanceProfiles",
            ("iam:CreateInstanceProfile",),
            [profile_arn],
            {
                "StringEquals": {
                    **request_owned,
                    "aws:RequestTag/topology.kubernetes.io/region": region,
                },
                "StringLike": {f"aws:RequestTag/{NODECLASS_TAG}": "*"},
            },
        ),
        sorted_statement(
            "TagOwnedInstanceProfiles",
            ("iam:TagInstanceProfile",),
            [profile_arn],
            {
                "StringEquals": {
                    **resource_owned,
                    "aws:ResourceTag/topology.kubernetes.io/region": region,
                    **request_owned,
                    "aws:RequestTag/topology.kubernetes.io/region": region,
                },
                "StringLike": {
                    f"aws:ResourceTag/{NODECLASS_TAG}": "*",
                    f"aws:RequestTag/{NODECLASS_TAG}": "*",
                },
            },
        ),
        sorted_statement(
            "ManageOwnedInstanceProfiles",
            (
                "iam:AddRoleToInstanceProfile",
                "iam:DeleteInstanceProfile",
                "iam:RemoveRoleFromInstanceProfile",
            ),
            [profile_arn],
            {
                "StringEquals": {
                    **resource_owned,
                    "aws:ResourceTag/topology.kubernetes.io/region": region,
                },
                "StringLike": {f"aws:ResourceTag/{NODECLASS_TAG}": "*"},
            },
        ),
        sorted_statement(
            "ReadInstanceProfiles",
            ("iam:GetInstanceProfile", "iam:ListInstanceProfiles"),
            [profile_arn],
        ),
        sorted_statement(
            "DiscoverApiEndpoint",
            ("eks:DescribeCluster",),
            [f"arn:{partition}:eks:{region}:{account}:cluster/{cluster_name}"],
        ),
    ]
    return {"Version": "2012-10-17", "Statement": statements}
