"""The AWS Load Balancer Controller's policy, scoped to what this cluster owns.

The controller tags everything it creates with `elbv2.k8s.aws/cluster`; every
change to an existing load balancer, target group or security group requires
that tag, and security-group rules are limited to the stack's VPC. Reads and
the calls ELB offers no resource-level permissions for take `*`, in the
stack's region only. WAF, Shield and Cognito permissions are left out: the
kit's Ingress uses none of them.
"""

from __future__ import annotations

from typing import Any

from infra.iam import sorted_statement

CLUSTER_TAG = "elbv2.k8s.aws/cluster"
READ_ACTIONS = (
    "acm:DescribeCertificate",
    "acm:ListCertificates",
    "ec2:DescribeAccountAttributes",
    "ec2:DescribeAddresses",
    "ec2:DescribeAvailabilityZones",
    "ec2:DescribeInstances",
    "ec2:DescribeInternetGateways",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeRouteTables",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "ec2:DescribeTags",
    "ec2:DescribeVpcs",
    "ec2:GetSecurityGroupsForVpc",
    "elasticloadbalancing:DescribeListenerAttributes",
    "elasticloadbalancing:DescribeListenerCertificates",
    "elasticloadbalancing:DescribeListeners",
    "elasticloadbalancing:DescribeLoadBalancerAttributes",
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DescribeRules",
    "elasticloadbalancing:DescribeSSLPolicies",
    "elasticloadbalancing:DescribeTags",
    "elasticloadbalancing:DescribeTargetGroupAttributes",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetHealth",
    "elasticloadbalancing:DescribeTrustStores",
)
MODIFY_OWNED = (
    "elasticloadbalancing:DeleteLoadBalancer",
    "elasticloadbalancing:DeleteTargetGroup",
    "elasticloadbalancing:ModifyListenerAttributes",
    "elasticloadbalancing:ModifyLoadBalancerAttributes",
    "elasticloadbalancing:ModifyTargetGroup",
    "elasticloadbalancing:ModifyTargetGroupAttributes",
    "elasticloadbalancing:SetIpAddressType",
    "elasticloadbalancing:SetSecurityGroups",
    "elasticloadbalancing:SetSubnets",
)
LISTENER_ACTIONS = (
    "elasticloadbalancing:AddListenerCertificates",
    "elasticloadbalancing:CreateListener",
    "elasticloadbalancing:CreateRule",
    "elasticloadbalancing:DeleteListener",
    "elasticloadbalancing:DeleteRule",
    "elasticloadbalancing:ModifyListener",
    "elasticloadbalancing:ModifyRule",
    "elasticloadbalancing:RemoveListenerCertificates",
    "elasticloadbalancing:SetRulePriorities",
)


def controller_policy(
    *, region: str, account: str, partition: str, vpc_id: str
) -> dict[str, Any]:
    """The IAM document for the Load Balancer Controller of one cluster."""
    ec2 = f"arn:{partition}:ec2:{region}:{account}"
    elb = f"arn:{partition}:elasticloadbalancing:{region}:{account}"
    in_region = {"StringEquals": {"aws:RequestedRegion": region}}
    owned = {"Null": {f"aws:ResourceTag/{CLUSTER_TAG}": "false"}}
    tagged_on_create = {"Null": {f"aws:RequestTag/{CLUSTER_TAG}": "false"}}
    balancers = [
        f"{elb}:targetgroup/*/*",
        f"{elb}:loadbalancer/app/*/*",
        f"{elb}:loadbalancer/net/*/*",
    ]
    statements = [
        sorted_statement(
            "CreateElbServiceLinkedRole",
            ("iam:CreateServiceLinkedRole",),
            [
                f"arn:{partition}:iam::{account}:role/aws-service-role/"
                "elasticloadbalancing.amazonaws.com/*"
            ],
            {
                "StringEquals": {
                    "iam:AWSServiceName": "elasticloadbalancing.amazonaws.com"
                }
            },
        ),
        # Describe and List calls have no resource-level permissions.
        sorted_statement("ReadInRegion", READ_ACTIONS, ["*"], in_region),
        sorted_statement(
            "CreateSecurityGroupsInVpc",
            ("ec2:CreateSecurityGroup",),
            [f"{ec2}:vpc/{vpc_id}", f"{ec2}:security-group/*"],
        ),
        sorted_statement(
            "TagNewSecurityGroups",
            ("ec2:CreateTags",),
            [f"{ec2}:security-group/*"],
            {
                "StringEquals": {"ec2:CreateAction": "CreateSecurityGroup"},
                **tagged_on_create,
            },
        ),
        sorted_statement(
            "OpenNodeGroupsToBalancers",
            ("ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"),
            [f"{ec2}:security-group/*"],
            {"ArnEquals": {"ec2:Vpc": f"{ec2}:vpc/{vpc_id}"}},
        ),
        sorted_statement(
            "ManageOwnedSecurityGroups",
            ("ec2:CreateTags", "ec2:DeleteSecurityGroup", "ec2:DeleteTags"),
            [f"{ec2}:security-group/*"],
            owned,
        ),
        sorted_statement(
            "CreateTaggedBalancers",
            (
                "elasticloadbalancing:CreateLoadBalancer",
                "elasticloadbalancing:CreateTargetGroup",
            ),
            ["*"],
            tagged_on_create,
        ),
        sorted_statement(
            "TagOnCreate",
            ("elasticloadbalancing:AddTags",),
            balancers,
            {
                "StringEquals": {
                    "elasticloadbalancing:CreateAction": [
                        "CreateLoadBalancer",
                        "CreateTargetGroup",
                    ]
                },
                **tagged_on_create,
            },
        ),
        sorted_statement(
            "RetagOwned",
            ("elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"),
            balancers,
            owned,
        ),
        sorted_statement("ModifyOwned", MODIFY_OWNED, ["*"], owned),
        sorted_statement(
            "ManageListenersAndRules",
            LISTENER_ACTIONS,
            [
                f"{elb}:loadbalancer/app/*/*",
                f"{elb}:listener/app/*/*/*",
                f"{elb}:listener-rule/app/*/*/*/*",
            ],
        ),
        sorted_statement(
            "RegisterTargets",
            (
                "elasticloadbalancing:DeregisterTargets",
                "elasticloadbalancing:RegisterTargets",
            ),
            [f"{elb}:targetgroup/*/*"],
        ),
    ]
    return {"Version": "2012-10-17", "Statement": statements}
