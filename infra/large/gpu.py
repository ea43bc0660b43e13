"""GPU plumbing on Karpenter's GPU nodes: the device plugin and DCGM exporter.

AL2023's NVIDIA AMI ships the driver and container toolkit, so the NVIDIA
device plugin alone makes `nvidia.com/gpu` schedulable (the GPU Operator would
be the alternative, with its driver and toolkit turned off). DCGM exporter
publishes `DCGM_FI_DEV_GPU_UTIL` and friends for the Grafana dashboard. Both
run only on GPU nodes and tolerate their taint.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra.large.karpenter import GPU_RESOURCE, POOL_LABEL

DEVICE_PLUGIN_REPO = "https://nvidia.github.io/k8s-device-plugin"
DEVICE_PLUGIN_VERSION = "0.17.1"
DCGM_REPO = "https://nvidia.github.io/dcgm-exporter/helm-charts"
DCGM_VERSION = "4.1.1"
NAMESPACE = "kube-system"
GPU_TOLERATION = {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}


@dataclass(frozen=True)
class GpuSupportArgs:
    """Where to install, and what must exist first."""

    provider: k8s.Provider
    ready: Sequence[pulumi.Resource]
    monitoring: pulumi.Resource


class GpuSupport(pulumi.ComponentResource):
    """NVIDIA device plugin and DCGM exporter as DaemonSets on GPU nodes."""

    device_plugin: k8s.helm.v4.Chart
    dcgm_exporter: k8s.helm.v4.Chart

    def __init__(
        self,
        name: str,
        args: GpuSupportArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("llmrouter:index:GpuSupport", name, None, opts)
        on_gpu_nodes = {
            "nodeSelector": {POOL_LABEL: "gpu"},
            "tolerations": [GPU_TOLERATION],
        }
        self.device_plugin = k8s.helm.v4.Chart(
            f"{name}-device-plugin",
            chart="nvidia-device-plugin",
            version=DEVICE_PLUGIN_VERSION,
            repository_opts={"repo": DEVICE_PLUGIN_REPO},
            namespace=NAMESPACE,
            values={**on_gpu_nodes, "gfd": {"enabled": False}},
            opts=pulumi.ResourceOptions(
                parent=self, provider=args.provider, depends_on=list(args.ready)
            ),
        )
        # The exporter's ServiceMonitor needs the Prometheus operator's CRDs.
        self.dcgm_exporter = k8s.helm.v4.Chart(
            f"{name}-dcgm-exporter",
            chart="dcgm-exporter",
            version=DCGM_VERSION,
            repository_opts={"repo": DCGM_REPO},
            namespace=NAMESPACE,
            values={
                **on_gpu_nodes,
                "serviceMonitor": {"enabled": True, "interval": "15s"},
            },
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=args.provider,
                depends_on=[*args.ready, args.monitoring],
            ),
        )

        self.register_outputs({})
