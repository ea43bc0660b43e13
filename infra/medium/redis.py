"""The medium stack's decision cache: ElastiCache Redis, encrypted both ways.

TLS in transit and encryption at rest are on; clients must present an AUTH
token, which the program generates, keeps in Secrets Manager and hands to the
tasks as an ECS secret (never as plain environment).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from infra.medium.network import REDIS_PORT

ENGINE_VERSION = "7.1"


@dataclass(frozen=True)
class RedisCacheArgs:
    """Placement and size of the cache."""

    subnet_ids: pulumi.Input[Sequence[str]]
    security_group_id: pulumi.Input[str]
    node_type: str
    replicas: int
    tags: Mapping[str, str]


class RedisCache(pulumi.ComponentResource):
    """A Redis replication group with TLS, at-rest encryption and an AUTH token."""

    url: pulumi.Output[str]
    auth_token_secret: aws.secretsmanager.Secret
    # For runtimes that take the token as a secret value (a Kubernetes Secret).
    auth_token: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: RedisCacheArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("llmrouter:index:RedisCache", name, None, opts)
        self._name = name
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)

        # ElastiCache AUTH tokens allow 16-128 printable characters but not
        # every symbol; letters and digits are always accepted.
        token = random.RandomPassword(
            f"{name}-auth-token", length=64, special=False, opts=self._child
        )
        self.auth_token_secret = self._store_token(token)
        self.auth_token = pulumi.Output.secret(token.result)
        group = self._declare_replication_group(token)
        self.url = group.primary_endpoint_address.apply(
            lambda host: f"rediss://{host}:{REDIS_PORT}/0"
        )

        self.register_outputs({"url": self.url})

    def _store_token(self, token: random.RandomPassword) -> aws.secretsmanager.Secret:
        secret = aws.secretsmanager.Secret(
            f"{self._name}-auth-token",
            description="AUTH token of the llm-router decision cache.",
            recovery_window_in_days=7,
            tags=dict(self._args.tags),
            opts=self._child,
        )
        aws.secretsmanager.SecretVersion(
            f"{self._name}-auth-token",
            secret_id=secret.id,
            secret_string=token.result,
            opts=self._child,
        )
        return secret

    def _declare_replication_group(
        self, token: random.RandomPassword
    ) -> aws.elasticache.ReplicationGroup:
        subnets = aws.elasticache.SubnetGroup(
            f"{self._name}-subnets",
            description="Private subnets of the llm-router decision cache.",
            subnet_ids=self._args.subnet_ids,
            tags=dict(self._args.tags),
            opts=self._child,
        )
        replicated = self._args.replicas > 0
        return aws.elasticache.ReplicationGroup(
            f"{self._name}-redis",
            description="llm-router decision cache.",
            engine="redis",
            engine_version=ENGINE_VERSION,
            node_type=self._args.node_type,
            num_cache_clusters=1 + self._args.replicas,
            automatic_failover_enabled=replicated,
            multi_az_enabled=replicated,
            port=REDIS_PORT,
            subnet_group_name=subnets.name,
            security_group_ids=[self._args.security_group_id],
            transit_encryption_enabled=True,
            at_rest_encryption_enabled=True,
            auth_token=token.result,
            snapshot_retention_limit=1,
            tags=dict(self._args.tags),
            opts=self._child,
        )
