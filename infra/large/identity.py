"""Pod-scoped AWS identities: EKS Pod Identity roles, and IRSA where it must be.

Pod Identity is the default: the role trusts `pods.eks.amazonaws.com` and an
association binds it to one service account. Two workloads use IRSA instead,
because their AWS SDKs read web-identity tokens but not the Pod Identity
agent: Triton's S3 client (aws-sdk-cpp, triton-inference-server/server#8090)
and Fluent Bit (whose credential chain documents web identity and the ECS
endpoint only). Their trust is pinned to one namespace and service account.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.iam import policy_document

POD_IDENTITY_SERVICE = "pods.eks.amazonaws.com"


@dataclass(frozen=True)
class ServiceAccountRef:
    """The Kubernetes service account a role is bound to."""

    namespace: str
    name: str


@dataclass(frozen=True)
class OidcProvider:
    """The cluster's IAM OIDC provider, for IRSA trust."""

    arn: pulumi.Input[str]
    url: pulumi.Input[str]


@dataclass(frozen=True)
class RoleSpec:
    """One pod role: who assumes it, what it may do."""

    account: ServiceAccountRef
    statements: Sequence[dict[str, Any]] = ()
    managed_policy_arns: Sequence[str] = ()
    extra_policies: Sequence[pulumi.Input[str]] = ()
    oidc: OidcProvider | None = None
    tags: Mapping[str, str] = field(default_factory=dict)


def pod_identity_trust() -> str:
    """Trust policy of a Pod Identity role (the agent also tags the session)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "EksPodIdentity",
                    "Effect": "Allow",
                    "Principal": {"Service": POD_IDENTITY_SERVICE},
                    "Action": ["sts:AssumeRole", "sts:TagSession"],
                }
            ],
        },
        sort_keys=True,
    )


def irsa_trust(provider_arn: str, provider_url: str, account: ServiceAccountRef) -> str:
    """Trust policy letting one service account assume the role through OIDC."""
    issuer = provider_url.removeprefix("https://")
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ServiceAccountWebIdentity",
                    "Effect": "Allow",
                    "Principal": {"Federated": provider_arn},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {
                        "StringEquals": {
                            f"{issuer}:aud": "sts.amazonaws.com",
                            f"{issuer}:sub": (
                                f"system:serviceaccount:{account.namespace}:"
                                f"{account.name}"
                            ),
                        }
                    },
                }
            ],
        },
        sort_keys=True,
    )


def declare_pod_role(
    name: str,
    spec: RoleSpec,
    *,
    cluster_name: str,
    parent: pulumi.Resource,
    depends_on: Sequence[pulumi.Resource] = (),
    bind: bool = True,
) -> aws.iam.Role:
    """A role for one service account, its policies, and its binding.

    `bind=False` leaves the Pod Identity association to the caller (an EKS
    add-on declares its own).
    """
    child = pulumi.ResourceOptions(parent=parent)
    if spec.oidc is None:
        trust: pulumi.Input[str] = pod_identity_trust()
    else:
        oidc = spec.oidc
        trust = pulumi.Output.all(oidc.arn, oidc.url).apply(
            lambda values: irsa_trust(values[0], values[1], spec.account)
        )
    role = aws.iam.Role(
        f"{name}-role",
        description=(
            f"Pod role of {spec.account.namespace}/{spec.account.name} "
            f"in {cluster_name}."
        ),
        assume_role_policy=trust,
        tags=dict(spec.tags),
        opts=child,
    )
    if spec.statements:
        aws.iam.RolePolicy(
            f"{name}-policy",
            role=role.id,
            policy=policy_document(spec.statements),
            opts=child,
        )
    for index, document in enumerate(spec.extra_policies):
        aws.iam.RolePolicy(
            f"{name}-policy-{index}", role=role.id, policy=document, opts=child
        )
    for managed in spec.managed_policy_arns:
        aws.iam.RolePolicyAttachment(
            f"{name}-{managed.rsplit('/', 1)[-1]}",
            role=role.name,
            policy_arn=managed,
            opts=child,
        )
    if spec.oidc is None and bind:
        aws.eks.PodIdentityAssociation(
            f"{name}-binding",
            cluster_name=cluster_name,
            namespace=spec.account.namespace,
            service_account=spec.account.name,
            role_arn=role.arn,
            tags=dict(spec.tags),
            opts=pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on)),
        )
    return role
