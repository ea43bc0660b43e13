"""One NVIDIA NIM per in-cluster tier, through the NIM Operator.

Why the operator (NIMCache + NIMService) rather than the `nim-llm` chart: on
Spot, GPU nodes come and go, and a NIM that downloads tens of GB of weights on
every start spends its first minutes (and their GPU-hours) idle. A NIMCache
fills a shared EFS volume once per tier; every NIMService replica mounts it
and starts from local weights. The operator also owns each tier's Service and
HorizontalPodAutoscaler, so the policy's `http://<service>.<namespace>.svc:8000/v1`
is exactly what it creates.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.large.config import NIM_PORT, NimTier
from infra.large.gpu import GPU_TOLERATION
from infra.large.karpenter import GPU_RESOURCE, TIER_LABEL
from infra.large.storage import STORAGE_CLASS

OPERATOR_REPO = "https://helm.ngc.nvidia.com/nvidia"
OPERATOR_VERSION = "3.0.2"
OPERATOR_NAMESPACE = "nim-operator"
API_VERSION = "apps.nvidia.com/v1alpha1"
# Names of Kubernetes Secrets, not their values.
AUTH_SECRET = "ngc-api-secret"  # noqa: S105
PULL_SECRET = "ngc-secret"  # noqa: S105
NGC_REGISTRY = "nvcr.io"
READY_PATH = "/v1/health/ready"
LIVE_PATH = "/v1/health/live"
# A NIM loads its engine before it is ready; large models take many minutes.
STARTUP_BUDGET_S = 1800
SCALE_CPU_PERCENT = 70
# NIM images run as this user and group (NVIDIA's default); the group owns the
# model cache volume, so every replica can read what the NIMCache wrote.
NIM_UID = 1000
NIM_GID = 2000


@dataclass(frozen=True)
class NimServicesArgs:
    """The tiers to serve, the NGC key, and what must exist first."""

    tiers: Sequence[NimTier]
    ngc_api_key: pulumi.Input[str]
    namespaces: Mapping[str, k8s.core.v1.Namespace]
    provider: k8s.Provider
    ready: Sequence[pulumi.Resource]
    monitoring: pulumi.Resource


class NimServices(pulumi.ComponentResource):
    """The NIM Operator, NGC secrets, and a NIMCache plus NIMService per tier."""

    operator: k8s.helm.v4.Chart
    services: dict[str, k8s.apiextensions.CustomResource]

    def __init__(
        self,
        name: str,
        args: NimServicesArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("llmrouter:index:NimServices", name, None, opts)
        self._name = name
        self._args = args

        self.operator = k8s.helm.v4.Chart(
            f"{name}-operator",
            chart="k8s-nim-operator",
            version=OPERATOR_VERSION,
            repository_opts={"repo": OPERATOR_REPO},
            namespace=OPERATOR_NAMESPACE,
            opts=pulumi.ResourceOptions(
                parent=self, provider=args.provider, depends_on=list(args.ready)
            ),
        )
        secrets = {
            namespace: self._declare_secrets(namespace)
            for namespace in sorted({tier.namespace for tier in args.tiers})
        }
        self.services = {
            tier.tier: self._declare_tier(tier, secrets[tier.namespace])
            for tier in args.tiers
        }

        self.register_outputs(
            {
                "endpoints": {
                    tier.tier: f"http://{tier.service}.{tier.namespace}.svc:{NIM_PORT}/v1"
                    for tier in args.tiers
                }
            }
        )

    def _declare_secrets(self, namespace: str) -> list[pulumi.Resource]:
        args = self._args
        opts = pulumi.ResourceOptions(
            parent=self,
            provider=args.provider,
            depends_on=[args.namespaces[namespace]],
        )
        key = pulumi.Output.secret(args.ngc_api_key)
        auth = k8s.core.v1.Secret(
            f"{self._name}-{namespace}-auth",
            metadata={"name": AUTH_SECRET, "namespace": namespace},
            type="Opaque",
            string_data={"NGC_API_KEY": key},
            opts=opts,
        )
        pull = k8s.core.v1.Secret(
            f"{self._name}-{namespace}-pull",
            metadata={"name": PULL_SECRET, "namespace": namespace},
            type="kubernetes.io/dockerconfigjson",
            string_data={".dockerconfigjson": key.apply(_docker_config)},
            opts=opts,
        )
        return [auth, pull]

    def _declare_tier(
        self, tier: NimTier, secrets: list[pulumi.Resource]
    ) -> k8s.apiextensions.CustomResource:
        args = self._args
        placement = {
            "nodeSelector": {TIER_LABEL: tier.tier},
            "tolerations": [GPU_TOLERATION],
        }
        after_operator = pulumi.ResourceOptions(
            parent=self,
            provider=args.provider,
            # The cache job needs the EFS StorageClass and a GPU pool.
            depends_on=[self.operator, *secrets, *args.ready],
        )
        metadata = {"name": tier.service, "namespace": tier.namespace}
        image = f"{tier.repository}:{tier.tag}"
        cache = k8s.apiextensions.CustomResource(
            f"{self._name}-{tier.tier}-cache",
            api_version=API_VERSION,
            kind="NIMCache",
            metadata=metadata,
            spec={
                "source": {
                    "ngc": {
                        "modelPuller": image,
                        "pullSecret": PULL_SECRET,
                        "authSecret": AUTH_SECRET,
                    }
                },
                "storage": {
                    "pvc": {
                        "create": True,
                        "storageClass": STORAGE_CLASS,
                        "size": f"{tier.cache_size_gi}Gi",
                        "volumeAccessMode": "ReadWriteMany",
                    }
                },
                **placement,
            },
            opts=after_operator,
        )
        return k8s.apiextensions.CustomResource(
            f"{self._name}-{tier.tier}",
            api_version=API_VERSION,
            kind="NIMService",
            metadata=metadata,
            spec={
                "image": {
                    "repository": tier.repository,
                    "tag": tier.tag,
                    "pullPolicy": "IfNotPresent",
                    "pullSecrets": [PULL_SECRET],
                },
                "authSecret": AUTH_SECRET,
                "storage": {"nimCache": {"name": tier.service, "profile": ""}},
                "replicas": tier.min_replicas,
                # Requests, so the scheduler packs replicas onto nodes that
                # hold them and the HPA has a CPU request to measure against.
                "resources": {
                    "requests": {
                        "cpu": f"{tier.cpu:g}",
                        "memory": f"{tier.memory_gi:g}Gi",
                    },
                    "limits": {GPU_RESOURCE: tier.gpus},
                },
                "userID": NIM_UID,
                "groupID": NIM_GID,
                "expose": {"service": {"type": "ClusterIP", "port": NIM_PORT}},
                "scale": _scale(tier),
                "startupProbe": _probe(
                    READY_PATH, period=10, failures=STARTUP_BUDGET_S // 10
                ),
                "readinessProbe": _probe(READY_PATH, period=10, failures=3),
                "livenessProbe": _probe(LIVE_PATH, period=15, failures=3),
                "metrics": {"enabled": True, "serviceMonitor": {"interval": "30s"}},
                **placement,
            },
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=args.provider,
                depends_on=[self.operator, *secrets, cache, args.monitoring],
            ),
        )


def _scale(tier: NimTier) -> dict[str, Any]:
    if tier.max_replicas == tier.min_replicas:
        return {"enabled": False}
    return {
        "enabled": True,
        "hpa": {
            "minReplicas": tier.min_replicas,
            "maxReplicas": tier.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": SCALE_CPU_PERCENT,
                        },
                    },
                }
            ],
        },
    }


def _probe(path: str, *, period: int, failures: int) -> dict[str, Any]:
    return {
        "enabled": True,
        "probe": {
            "httpGet": {"path": path, "port": NIM_PORT},
            "periodSeconds": period,
            "failureThreshold": failures,
            "timeoutSeconds": 5,
        },
    }


def _docker_config(api_key: str) -> str:
    # NGC takes the literal user name `$oauthtoken` with the API key.
    token = base64.b64encode(f"$oauthtoken:{api_key}".encode()).decode()
    return json.dumps(
        {
            "auths": {
                NGC_REGISTRY: {
                    "username": "$oauthtoken",
                    "password": api_key,
                    "auth": token,
                }
            }
        }
    )
