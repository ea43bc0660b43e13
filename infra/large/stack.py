"""The large stack: the router on EKS, NIM per tier on Karpenter GPU Spot.

At 10,000+ requests a day, self-hosted models on Spot GPUs cost less than
per-token prices once they are busy, and the classifier on Triton scales
apart from the routers. The order of declaration is the order things must
exist in: cluster, Karpenter and its pools, monitoring CRDs, GPU plumbing,
the model services, the classifier, then the router in front of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra.components.cost_alarms import CostAlarms, CostAlarmsArgs
from infra.components.router_image import RouterImage, RouterImageArgs
from infra.components.router_wiring import RouterWiring, RouterWiringArgs
from infra.config import PROJECT_ROOT, KitConfig
from infra.large.cache import DecisionCache, DecisionCacheArgs
from infra.large.cluster import Cluster, ClusterArgs
from infra.large.config import NIM_PORT, LargeConfig
from infra.large.gpu import GpuSupport, GpuSupportArgs
from infra.large.identity import OidcProvider
from infra.large.karpenter import Karpenter, KarpenterArgs
from infra.large.nim import NimServices, NimServicesArgs
from infra.large.observability import Observability, ObservabilityArgs
from infra.large.router import CONTAINER, NAME, RouterDeployment, RouterDeploymentArgs
from infra.large.storage import ModelStorage, ModelStorageArgs
from infra.large.triton import TritonArgs, TritonClassifier


@dataclass(frozen=True)
class LargeStackArgs:
    """The validated stack config, and the NGC key (a Pulumi secret)."""

    config: KitConfig
    large: LargeConfig
    ngc_api_key: pulumi.Input[str]


class LargeStack(pulumi.ComponentResource):
    """Every component of the large stack, wired in dependency order."""

    outputs: dict[str, pulumi.Input[object]]

    def __init__(
        self,
        name: str,
        args: LargeStackArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("llmrouter:index:LargeStack", name, None, opts)
        self._name = name
        config, large = args.config, args.large
        tags: Mapping[str, str] = dict(config.tags)
        self._tags = tags
        child = pulumi.ResourceOptions(parent=self)

        wiring = RouterWiring(
            f"{name}-router", RouterWiringArgs.for_stack(config), opts=child
        )
        image = RouterImage(
            f"{name}-image", RouterImageArgs.for_stack(config), opts=child
        )
        cluster = Cluster(
            f"{name}-cluster",
            ClusterArgs(
                cluster_name=config.name,
                large=large,
                vpc_cidr=config.medium.vpc_cidr,
                nat_gateways=config.medium.nat_gateways,
                log_retention_days=config.log_retention_days,
                tags=tags,
            ),
            opts=child,
        )
        provider = cluster.provider
        oidc = OidcProvider(
            arn=cluster.oidc_provider_arn, url=cluster.oidc_provider_url
        )
        karpenter = Karpenter(
            f"{name}-karpenter",
            KarpenterArgs(
                cluster_name=config.name,
                large=large,
                provider=provider,
                ready=cluster.ready,
                region=config.region,
                tags=tags,
            ),
            opts=child,
        )
        namespaces = self._declare_namespaces(large, provider, cluster.ready)
        with_nodes = [*cluster.ready, *karpenter.node_pools]
        alarms = CostAlarms(
            f"{name}-cost",
            CostAlarmsArgs.for_stack(config, wiring.profiles.profile_arns),
            opts=child,
        )
        observability = Observability(
            f"{name}-obs",
            ObservabilityArgs(
                cluster_name=config.name,
                region=config.region,
                router_namespace=large.namespace,
                router_name=NAME,
                router_container=CONTAINER,
                tiers=config.policy.tier_names,
                alarms=config.alarms,
                log_group_name=f"/llm-router/{config.stack}/router",
                log_retention_days=config.log_retention_days,
                oidc=oidc,
                provider=provider,
                ready=with_nodes,
                tags=tags,
                stack=config.stack,
                gpu_tiers=[tier.tier for tier in large.nim_tiers],
                alarm_topic_arn=alarms.topic.arn,
            ),
            opts=child,
        )
        nim_endpoints = self._declare_models(
            large,
            args.ngc_api_key,
            cluster,
            namespaces,
            ready=with_nodes,
            monitoring=observability.stack,
        )
        cache = DecisionCache(
            f"{name}-cache",
            DecisionCacheArgs(
                vpc_id=cluster.vpc_id,
                subnet_ids=cluster.private_subnet_ids,
                cluster_security_group_id=cluster.security_group_id,
                node_type=config.medium.redis_node_type,
                replicas=config.medium.redis_replicas,
                tags=tags,
            ),
            opts=child,
        )
        triton = TritonClassifier(
            f"{name}-triton",
            TritonArgs(
                root=PROJECT_ROOT,
                large=large,
                cluster_name=config.name,
                region=config.region,
                oidc=oidc,
                provider=provider,
                namespace=namespaces[large.namespace],
                ready=with_nodes,
                build_on_preview=config.image_build_on_preview,
                tags=tags,
            ),
            opts=child,
        )
        router = RouterDeployment(
            f"{name}-svc",
            RouterDeploymentArgs(
                wiring=wiring,
                image_ref=image.image_ref,
                large=large,
                cluster_name=config.name,
                region=config.region,
                vpc_id=cluster.vpc_id,
                triton_address=triton.grpc_address,
                redis_url=cache.redis.url,
                redis_auth_token=cache.redis.auth_token,
                provider=provider,
                namespace=namespaces[large.namespace],
                ready=with_nodes,
                tags=tags,
            ),
            opts=child,
        )
        kubeconfig: pulumi.Output[str] = pulumi.Output.secret(
            cluster.cluster.kubeconfig_json
        )
        self.outputs = {
            "url": router.ingress.status.apply(_ingress_url),
            "clusterName": config.name,
            "kubeconfig": kubeconfig,
            "imageRef": image.image_ref,
            "modelRepository": triton.bucket.bucket,
            "tritonAddress": triton.grpc_address,
            "nimEndpoints": nim_endpoints,
            "tierProfiles": wiring.profiles.profile_arns,
            "apiKeysSecretArn": wiring.api_keys_secret.arn,
            "apiKey": wiring.generated_api_key,
            "interruptionQueueUrl": karpenter.queue.url,
            "routerLogGroup": observability.log_group.name,
            "grafanaAdminPassword": observability.grafana_password,
            "alarmTopicArn": alarms.topic.arn,
            "dashboardName": alarms.dashboard.dashboard_name,
        }
        self.register_outputs(self.outputs)

    def _declare_models(
        self,
        large: LargeConfig,
        ngc_api_key: pulumi.Input[str],
        cluster: Cluster,
        namespaces: Mapping[str, k8s.core.v1.Namespace],
        *,
        ready: list[pulumi.Resource],
        monitoring: pulumi.Resource,
    ) -> dict[str, str]:
        """GPU plumbing, model storage and the NIMs; their endpoints by tier."""
        if not large.nim_tiers:
            return {}
        child = pulumi.ResourceOptions(parent=self)
        gpu = GpuSupport(
            f"{self._name}-gpu",
            GpuSupportArgs(
                provider=cluster.provider, ready=ready, monitoring=monitoring
            ),
            opts=child,
        )
        storage = ModelStorage(
            f"{self._name}-models",
            ModelStorageArgs(
                vpc_id=cluster.vpc_id,
                vpc_cidr=cluster.vpc_cidr,
                private_subnet_ids=cluster.private_subnet_ids,
                provider=cluster.provider,
                ready=cluster.ready,
                tags=self._tags,
            ),
            opts=child,
        )
        NimServices(
            f"{self._name}-nim",
            NimServicesArgs(
                tiers=large.nim_tiers,
                ngc_api_key=ngc_api_key,
                namespaces=namespaces,
                provider=cluster.provider,
                ready=[*ready, gpu.device_plugin, storage.storage_class],
                monitoring=monitoring,
            ),
            opts=child,
        )
        return {
            tier.tier: f"http://{tier.service}.{tier.namespace}.svc:{NIM_PORT}/v1"
            for tier in large.nim_tiers
        }

    def _declare_namespaces(
        self,
        large: LargeConfig,
        provider: k8s.Provider,
        ready: list[pulumi.Resource],
    ) -> dict[str, k8s.core.v1.Namespace]:
        names = {large.namespace, *(tier.namespace for tier in large.nim_tiers)}
        return {
            namespace: k8s.core.v1.Namespace(
                f"{self._name}-ns-{namespace}",
                metadata={
                    "name": namespace,
                    # Refuse privileged pods in the kit's own namespaces.
                    "labels": {"pod-security.kubernetes.io/enforce": "baseline"},
                },
                opts=pulumi.ResourceOptions(
                    parent=self, provider=provider, depends_on=list(ready)
                ),
            )
            for namespace in sorted(names)
        }


def _ingress_url(status: object) -> str:
    """`https://<ALB host>` once the controller has provisioned the ALB."""
    balancer = getattr(status, "load_balancer", None)
    entries = getattr(balancer, "ingress", None) or []
    host = getattr(entries[0], "hostname", None) if entries else None
    return f"https://{host}" if host else ""
