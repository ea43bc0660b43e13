"""The router on EKS: a hardened Deployment behind an HTTPS-only ALB.

Same image and same environment as the other stacks (`RouterWiring`), plus
what Kubernetes adds: the classifier is `triton` (the router classifies in
process whenever Triton is down or slow), the API-key secret is read at start
through Pod Identity, and the policy is inline, so nothing watches a file.

Exposure: the AWS Load Balancer Controller turns the Ingress into an ALB with
a single HTTPS listener (TLS 1.3/1.2 policy, the ACM certificate from config,
no port 80 at all) sending traffic straight to pod IPs. An ALB rather than an
NLB: it terminates TLS with ACM, checks `/readyz` over HTTP, drops invalid
headers, and holds streamed completions with a 300 s idle timeout.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import cast

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.components.router_wiring import (
    HEALTH_PATH,
    READY_PATH,
    ROUTER_PORT,
    RouterWiring,
)
from infra.iam import statement
from infra.large.cluster import SYSTEM_LABEL
from infra.large.config import LargeConfig
from infra.large.identity import RoleSpec, ServiceAccountRef, declare_pod_role
from infra.large.karpenter import CPU_POOL, POOL_LABEL
from infra.large.lbc_policy import controller_policy
from infra.large.workload import (
    TMP_PATH,
    container_security,
    declare_scaling,
    http_probe,
    pod_security,
)

NAME = "llm-router"
CONTAINER = "router"
SERVICE_PORT = 80
LABELS = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/part-of": "llm-router"}
LBC_REPO = "https://aws.github.io/eks-charts"
LBC_VERSION = "1.14.0"
LBC_SERVICE_ACCOUNT = "aws-load-balancer-controller"
SSL_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
# The Kubernetes Secret holding the Redis AUTH token (a name, not a value).
REDIS_SECRET = "llm-router-redis"  # noqa: S105
REDIS_TOKEN_KEY = "auth-token"  # noqa: S105
# Streamed completions can run for minutes; the ALB must not cut them.
IDLE_TIMEOUT_S = 300
# Longer than the router's shutdown grace (30 s) so open streams can finish.
TERMINATION_GRACE_S = 45


@dataclass(frozen=True)
class RouterDeploymentArgs:
    """The wiring, the image, the cluster, and where Triton answers."""

    wiring: RouterWiring
    image_ref: pulumi.Input[str]
    large: LargeConfig
    cluster_name: str
    region: str
    vpc_id: pulumi.Input[str]
    triton_address: str
    redis_url: pulumi.Input[str]
    redis_auth_token: pulumi.Input[str]
    provider: k8s.Provider
    namespace: k8s.core.v1.Namespace
    ready: Sequence[pulumi.Resource]
    tags: Mapping[str, str]


class RouterDeployment(pulumi.ComponentResource):
    """Load Balancer Controller, router Deployment, Service, HPA, PDB and Ingress."""

    deployment: k8s.apps.v1.Deployment
    ingress: k8s.networking.v1.Ingress

    def __init__(
        self,
        name: str,
        args: RouterDeploymentArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("llmrouter:index:RouterDeployment", name, None, opts)
        self._name = name
        self._args = args
        self._ns = args.large.namespace
        invoke = pulumi.InvokeOutputOptions(parent=self)
        self._account = aws.get_caller_identity_output(opts=invoke).account_id
        self._partition = aws.get_partition_output(opts=invoke).partition
        on_cluster = pulumi.ResourceOptions(
            parent=self,
            provider=args.provider,
            depends_on=[args.namespace, *args.ready],
        )

        controller = self._declare_load_balancer_controller()
        role = self._declare_role()
        account = k8s.core.v1.ServiceAccount(
            f"{name}-sa",
            metadata={"name": NAME, "namespace": self._ns, "labels": LABELS},
            opts=on_cluster,
        )
        redis = k8s.core.v1.Secret(
            f"{name}-redis",
            metadata={"name": REDIS_SECRET, "namespace": self._ns, "labels": LABELS},
            type="Opaque",
            string_data={REDIS_TOKEN_KEY: pulumi.Output.secret(args.redis_auth_token)},
            opts=on_cluster,
        )
        self.deployment = self._declare_deployment(role, account, redis)
        service = k8s.core.v1.Service(
            f"{name}-service",
            metadata={"name": NAME, "namespace": self._ns, "labels": LABELS},
            spec={
                "selector": LABELS,
                "ports": [
                    {"name": "http", "port": SERVICE_PORT, "target_port": "http"}
                ],
            },
            opts=on_cluster,
        )
        declare_scaling(
            NAME,
            namespace=self._ns,
            labels=LABELS,
            deployment=self.deployment,
            min_replicas=args.large.router_min_replicas,
            max_replicas=args.large.router_max_replicas,
            cpu_percent=args.large.router_cpu_target_percent,
            opts=on_cluster,
        )
        self.ingress = self._declare_ingress(service, controller)

        self.register_outputs({"deployment": self.deployment.metadata["name"]})

    def _declare_load_balancer_controller(self) -> k8s.helm.v4.Chart:
        args = self._args
        document = pulumi.Output.all(self._account, self._partition, args.vpc_id).apply(
            lambda values: json.dumps(
                controller_policy(
                    region=args.region,
                    account=values[0],
                    partition=values[1],
                    vpc_id=values[2],
                ),
                sort_keys=True,
            )
        )
        role = declare_pod_role(
            f"{self._name}-lbc",
            RoleSpec(
                account=ServiceAccountRef("kube-system", LBC_SERVICE_ACCOUNT),
                extra_policies=[document],
                tags=args.tags,
            ),
            cluster_name=args.cluster_name,
            parent=self,
            depends_on=list(args.ready),
        )
        return k8s.helm.v4.Chart(
            f"{self._name}-lbc",
            chart="aws-load-balancer-controller",
            version=LBC_VERSION,
            repository_opts={"repo": LBC_REPO},
            namespace="kube-system",
            values={
                "clusterName": args.cluster_name,
                "region": args.region,
                "vpcId": args.vpc_id,
                "replicaCount": 2,
                "serviceAccount": {"name": LBC_SERVICE_ACCOUNT},
                "nodeSelector": dict(SYSTEM_LABEL),
                # The role ARN in the inputs restarts the pods when it changes.
                "podAnnotations": {"llm-router.dev/role-arn": role.arn},
            },
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=args.provider,
                depends_on=[*args.ready, role],
            ),
        )

    def _declare_role(self) -> aws.iam.Role:
        args = self._args
        wiring = args.wiring
        return declare_pod_role(
            f"{self._name}-pod",
            RoleSpec(
                account=ServiceAccountRef(self._ns, NAME),
                statements=[
                    statement(
                        "ReadApiKeys",
                        ["secretsmanager:GetSecretValue"],
                        [wiring.api_keys_secret.arn],
                    )
                ],
                # Bedrock tiers, if the policy has any: invoke only through
                # their inference profiles.
                extra_policies=(
                    [wiring.invoke_policy] if wiring.invoke_policy is not None else []
                ),
                tags=args.tags,
            ),
            cluster_name=args.cluster_name,
            parent=self,
            depends_on=list(args.ready),
        )

    def environment(self) -> dict[str, pulumi.Input[str]]:
        """The router's environment: the shared wiring plus the EKS specifics."""
        args = self._args
        return {
            **args.wiring.environment,
            "LLM_ROUTER_HOST": "0.0.0.0",
            "LLM_ROUTER_CLASSIFIER": "triton",
            "LLM_ROUTER_TRITON_URL": args.triton_address,
            "LLM_ROUTER_TRITON_PROTOCOL": "grpc",
            "LLM_ROUTER_API_KEYS_SECRET_ARN": args.wiring.api_keys_secret.arn,
            # The policy is inline; there is no file to watch.
            "LLM_ROUTER_RELOAD_WATCH": "false",
            # One Redis for every pod: shared decisions, limits and budgets.
            "LLM_ROUTER_CACHE_BACKEND": "redis",
            "LLM_ROUTER_REDIS_URL": args.redis_url,
            "LLM_ROUTER_LIMITS_BACKEND": "redis",
            "LLM_ROUTER_BUDGETS_BACKEND": "redis",
        }

    def _declare_deployment(
        self,
        role: aws.iam.Role,
        account: k8s.core.v1.ServiceAccount,
        redis: k8s.core.v1.Secret,
    ) -> k8s.apps.v1.Deployment:
        args, large = self._args, self._args.large
        memory = f"{large.router_memory_mb}Mi"
        env: list[dict[str, object]] = [
            {"name": key, "value": value}
            for key, value in sorted(self.environment().items())
        ]
        # The AUTH token comes from the Secret, never as a plain value.
        env.append(
            {
                "name": "LLM_ROUTER_REDIS_AUTH_TOKEN",
                "value_from": {
                    "secret_key_ref": {"name": REDIS_SECRET, "key": REDIS_TOKEN_KEY}
                },
            }
        )
        return k8s.apps.v1.Deployment(
            f"{self._name}-deployment",
            metadata={"name": NAME, "namespace": self._ns, "labels": LABELS},
            # Pod specs mix typed dicts from workload.py; the SDK checks them.
            spec=cast(
                k8s.apps.v1.DeploymentSpecArgsDict,
                {
                    "replicas": large.router_min_replicas,
                    "selector": {"match_labels": LABELS},
                    "strategy": {
                        "type": "RollingUpdate",
                        "rolling_update": {"max_unavailable": 0, "max_surge": "25%"},
                    },
                    "template": {
                        "metadata": {
                            "labels": LABELS,
                            # A new role restarts the pods with its credentials.
                            "annotations": {"llm-router.dev/role-arn": role.arn},
                        },
                        "spec": {
                            "service_account_name": NAME,
                            "security_context": pod_security(),
                            "termination_grace_period_seconds": TERMINATION_GRACE_S,
                            # The router image is arm64 (Graviton).
                            "node_selector": {
                                POOL_LABEL: CPU_POOL,
                                "kubernetes.io/arch": "arm64",
                            },
                            "topology_spread_constraints": [
                                {
                                    "max_skew": 1,
                                    "topology_key": "topology.kubernetes.io/zone",
                                    "when_unsatisfiable": "ScheduleAnyway",
                                    "label_selector": {"match_labels": LABELS},
                                }
                            ],
                            "containers": [
                                {
                                    "name": CONTAINER,
                                    "image": args.image_ref,
                                    "ports": [
                                        {"name": "http", "container_port": ROUTER_PORT}
                                    ],
                                    "env": env,
                                    "resources": {
                                        "requests": {
                                            "cpu": f"{large.router_cpu_millis}m",
                                            "memory": memory,
                                        },
                                        "limits": {
                                            "cpu": f"{2 * large.router_cpu_millis}m",
                                            "memory": memory,
                                        },
                                    },
                                    "security_context": container_security(),
                                    "startup_probe": http_probe(
                                        HEALTH_PATH, ROUTER_PORT, period=2, failures=30
                                    ),
                                    "liveness_probe": http_probe(
                                        HEALTH_PATH, ROUTER_PORT, period=10, failures=3
                                    ),
                                    "readiness_probe": http_probe(
                                        READY_PATH, ROUTER_PORT, period=5, failures=2
                                    ),
                                    "volume_mounts": [
                                        {"name": "tmp", "mount_path": TMP_PATH}
                                    ],
                                }
                            ],
                            "volumes": [
                                {"name": "tmp", "empty_dir": {"size_limit": "64Mi"}}
                            ],
                        },
                    },
                },
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=args.provider,
                depends_on=[args.namespace, account, redis, *args.ready],
            ),
        )

    def _declare_ingress(
        self, service: k8s.core.v1.Service, controller: k8s.helm.v4.Chart
    ) -> k8s.networking.v1.Ingress:
        args, large = self._args, self._args.large
        tags = ",".join(f"{key}={value}" for key, value in sorted(args.tags.items()))
        annotations = {
            "alb.ingress.kubernetes.io/scheme": "internet-facing",
            "alb.ingress.kubernetes.io/target-type": "ip",
            # HTTPS only: no listener on port 80 exists to redirect or leak.
            "alb.ingress.kubernetes.io/listen-ports": json.dumps([{"HTTPS": 443}]),
            "alb.ingress.kubernetes.io/certificate-arn": large.certificate_arn,
            "alb.ingress.kubernetes.io/ssl-policy": SSL_POLICY,
            "alb.ingress.kubernetes.io/inbound-cidrs": ",".join(large.ingress_cidrs),
            "alb.ingress.kubernetes.io/healthcheck-path": READY_PATH,
            "alb.ingress.kubernetes.io/load-balancer-attributes": (
                f"idle_timeout.timeout_seconds={IDLE_TIMEOUT_S},"
                "routing.http.drop_invalid_header_fields.enabled=true"
            ),
            "alb.ingress.kubernetes.io/tags": tags,
        }
        return k8s.networking.v1.Ingress(
            f"{self._name}-ingress",
            metadata={
                "name": NAME,
                "namespace": self._ns,
                "labels": LABELS,
                "annotations": annotations,
            },
            spec={
                "ingress_class_name": "alb",
                "default_backend": {
                    "service": {
                        "name": service.metadata["name"],
                        "port": {"number": SERVICE_PORT},
                    }
                },
            },
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=args.provider,
                # The controller's webhook must answer before an Ingress.
                depends_on=[controller, service],
            ),
        )
