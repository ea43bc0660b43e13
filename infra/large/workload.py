"""What every Deployment of the kit shares: hardening, scaling, disruption.

Pods run as a fixed non-root user with a read-only root filesystem, no
privilege escalation, no capabilities and the runtime's seccomp profile.
Writable paths are explicit `emptyDir` volumes. Each Deployment gets a CPU
HorizontalPodAutoscaler and a PodDisruptionBudget keeping one pod up.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

NON_ROOT_UID = 10001
# Mount paths of the writable emptyDir volumes (not files this program writes).
TMP_PATH = "/tmp"  # noqa: S108
SHM_PATH = "/dev/shm"  # noqa: S108


def pod_security() -> dict[str, Any]:
    """The pod-level security context."""
    return {
        "run_as_non_root": True,
        "run_as_user": NON_ROOT_UID,
        "run_as_group": NON_ROOT_UID,
        "fs_group": NON_ROOT_UID,
        "seccomp_profile": {"type": "RuntimeDefault"},
    }


def container_security() -> dict[str, Any]:
    """The container-level security context."""
    return {
        "run_as_non_root": True,
        "read_only_root_filesystem": True,
        "allow_privilege_escalation": False,
        "capabilities": {"drop": ["ALL"]},
    }


def http_probe(path: str, port: int, *, period: int, failures: int) -> dict[str, Any]:
    """An HTTP GET probe."""
    return {
        "http_get": {"path": path, "port": port},
        "period_seconds": period,
        "failure_threshold": failures,
        "timeout_seconds": 3,
    }


def declare_scaling(
    name: str,
    *,
    namespace: str,
    labels: Mapping[str, str],
    deployment: k8s.apps.v1.Deployment,
    min_replicas: int,
    max_replicas: int,
    cpu_percent: int,
    opts: pulumi.ResourceOptions,
) -> None:
    """A CPU autoscaler and a disruption budget for one Deployment."""
    k8s.autoscaling.v2.HorizontalPodAutoscaler(
        f"{name}-hpa",
        metadata={"name": name, "namespace": namespace},
        spec={
            "scale_target_ref": {
                "api_version": "apps/v1",
                "kind": "Deployment",
                "name": deployment.metadata["name"],
            },
            "min_replicas": min_replicas,
            "max_replicas": max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "average_utilization": cpu_percent,
                        },
                    },
                }
            ],
        },
        opts=opts,
    )
    k8s.policy.v1.PodDisruptionBudget(
        f"{name}-pdb",
        metadata={"name": name, "namespace": namespace},
        spec={"min_available": 1, "selector": {"match_labels": dict(labels)}},
        opts=opts,
    )
