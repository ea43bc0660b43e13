"""The medium stack: the router on ECS Fargate behind an HTTPS ALB, Redis cache.

At ~1,000 requests a day, two small always-on tasks cost about as much as
Lambda would and keep latency flat; Redis shares decisions, rate limits and
tier budgets across the tasks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi

from infra.components.cost_alarms import CostAlarms, CostAlarmsArgs
from infra.components.router_image import RouterImage, RouterImageArgs
from infra.components.router_wiring import RouterWiring, RouterWiringArgs
from infra.config import KitConfig
from infra.medium.network import Network, NetworkArgs
from infra.medium.redis import RedisCache, RedisCacheArgs
from infra.medium.service import RouterService, RouterServiceArgs


@dataclass(frozen=True)
class MediumStackArgs:
    """The validated stack config."""

    config: KitConfig


class MediumStack(pulumi.ComponentResource):
    """Network, Redis, the Fargate service, and the shared router pieces."""

    outputs: dict[str, pulumi.Input[object]]

    def __init__(
        self,
        name: str,
        args: MediumStackArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("llmrouter:index:MediumStack", name, None, opts)
        self._name = name
        self._config = config = args.config
        self._tags: Mapping[str, str] = dict(config.tags)
        self._child = pulumi.ResourceOptions(parent=self)

        wiring = RouterWiring(
            f"{name}-router", RouterWiringArgs.for_stack(config), opts=self._child
        )
        image = RouterImage(
            f"{name}-image", RouterImageArgs.for_stack(config), opts=self._child
        )
        network = Network(
            f"{name}-net",
            NetworkArgs(
                vpc_cidr=config.medium.vpc_cidr,
                nat_gateways=config.medium.nat_gateways,
                ingress_cidrs=config.medium.ingress_cidrs,
                region=config.region,
                tags=self._tags,
            ),
            opts=self._child,
        )
        redis = RedisCache(
            f"{name}-cache",
            RedisCacheArgs(
                subnet_ids=network.private_subnet_ids,
                security_group_id=network.redis_group.id,
                node_type=config.medium.redis_node_type,
                replicas=config.medium.redis_replicas,
                tags=self._tags,
            ),
            opts=self._child,
        )
        service = self._declare_service(wiring, image, network, redis)
        alarms = CostAlarms(
            f"{name}-cost",
            CostAlarmsArgs.for_stack(config, wiring.profiles.profile_arns),
            opts=self._child,
        )

        self.outputs = {
            "url": service.load_balancer.dns_name.apply(lambda host: f"https://{host}"),
            "loadBalancerDnsName": service.load_balancer.dns_name,
            "serviceName": service.service.name,
            "imageRef": image.image_ref,
            "tierProfiles": wiring.profiles.profile_arns,
            "apiKeysSecretArn": wiring.api_keys_secret.arn,
            "apiKey": wiring.generated_api_key,
            "alarmTopicArn": alarms.topic.arn,
            "dashboardName": alarms.dashboard.dashboard_name,
        }
        self.register_outputs(self.outputs)

    def _declare_service(
        self,
        wiring: RouterWiring,
        image: RouterImage,
        network: Network,
        redis: RedisCache,
    ) -> RouterService:
        config = self._config
        environment: dict[str, pulumi.Input[str]] = {
            **wiring.environment,
            "LLM_ROUTER_HOST": "0.0.0.0",
            "LLM_ROUTER_CACHE_BACKEND": "redis",
            "LLM_ROUTER_REDIS_URL": redis.url,
            # With Redis at hand, rate limits and tier budgets are shared by
            # every task instead of counted per task.
            "LLM_ROUTER_LIMITS_BACKEND": "redis",
            "LLM_ROUTER_BUDGETS_BACKEND": "redis",
        }
        return RouterService(
            f"{self._name}-svc",
            RouterServiceArgs(
                sizing=config.medium,
                image_ref=image.image_ref,
                repository_arn=image.repository.arn,
                environment=environment,
                secrets={
                    "LLM_ROUTER_API_KEYS": wiring.api_keys_secret.arn,
                    "LLM_ROUTER_REDIS_AUTH_TOKEN": redis.auth_token_secret.arn,
                },
                invoke_policy=wiring.invoke_policy,
                vpc_id=network.vpc_id,
                public_subnet_ids=network.public_subnet_ids,
                private_subnet_ids=network.private_subnet_ids,
                alb_group_id=network.alb_group.id,
                task_group_id=network.task_group.id,
                region=config.region,
                log_group_name=f"/llm-router/{config.stack}/router",
                log_retention_days=config.log_retention_days,
                tags=self._tags,
            ),
            opts=self._child,
        )
