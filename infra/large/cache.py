"""The large stack's shared decision cache: the medium stack's Redis, in the VPC.

With many router pods, per-pod memory would split the decision cache, the
rate limits and the tier budgets ten ways. The same ElastiCache component as
the medium stack (TLS, at-rest encryption, AUTH token) serves them all; its
security group admits Redis only from the cluster security group, which every
node (system group and Karpenter's) carries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.medium.network import REDIS_PORT
from infra.medium.redis import RedisCache, RedisCacheArgs


@dataclass(frozen=True)
class DecisionCacheArgs:
    """Network placement and size of the cache."""

    vpc_id: pulumi.Input[str]
    subnet_ids: pulumi.Input[Sequence[str]]
    cluster_security_group_id: pulumi.Input[str]
    node_type: str
    replicas: int
    tags: Mapping[str, str]


class DecisionCache(pulumi.ComponentResource):
    """A security group admitting only the cluster, and the Redis behind it."""

    redis: RedisCache

    def __init__(
        self,
        name: str,
        args: DecisionCacheArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("llmrouter:index:DecisionCache", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        group = aws.ec2.SecurityGroup(
            f"{name}-redis",
            description="The decision cache, from the cluster's nodes only.",
            vpc_id=args.vpc_id,
            tags={**args.tags, "Name": f"{name}-redis"},
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-redis-from-cluster",
            security_group_id=group.id,
            ip_protocol="tcp",
            from_port=REDIS_PORT,
            to_port=REDIS_PORT,
            referenced_security_group_id=args.cluster_security_group_id,
            tags=dict(args.tags),
            opts=child,
        )
        self.redis = RedisCache(
            f"{name}-cache",
            RedisCacheArgs(
                subnet_ids=args.subnet_ids,
                security_group_id=group.id,
                node_type=args.node_type,
                replicas=args.replicas,
                tags=args.tags,
            ),
            opts=child,
        )

        self.register_outputs({"url": self.redis.url})
