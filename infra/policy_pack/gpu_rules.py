"""GPU guardrails for Karpenter node pools, as pure functions.

A GPU NodePool (one that taints or selects GPU capacity) must carry a
`nvidia.com/gpu` limit, the spend ceiling Karpenter enforces, and must choose
its instance families from an allow-list: an unbounded pool can launch a
p5.48xlarge (8 H100s) as readily as a g5.xlarge. Properties are the custom
resource's own (camelCase) fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from infra.policy_pack.rules import Rule

NODE_POOL: Final = "kubernetes:karpenter.sh/v1:NodePool"
GPU_RESOURCE: Final = "nvidia.com/gpu"
FAMILY_KEY: Final = "karpenter.k8s.aws/instance-family"
GPU_KEYS: Final = (
    "karpenter.k8s.aws/instance-gpu-count",
    "karpenter.k8s.aws/instance-gpu-name",
    "karpenter.k8s.aws/instance-gpu-manufacturer",
)
# GPU families the kit allows: NVIDIA inference parts up to A100/H100 hosts.
ALLOWED_GPU_FAMILIES: Final = ("g4dn", "g5", "g6", "g6e", "gr6", "p4d", "p5")
# How many GPUs one pool may hold before a reviewer should look twice.
MAX_GPU_LIMIT: Final = 64

Props = Mapping[str, Any]


def check_gpu_pool_limits(resource_type: str, props: Props) -> list[str]:
    """GPU node pools cap their GPUs with a positive `nvidia.com/gpu` limit."""
    if not _is_gpu_pool(resource_type, props):
        return []
    limits = (props.get("spec") or {}).get("limits") or {}
    raw = limits.get(GPU_RESOURCE)
    try:
        gpus = int(str(raw))
    except ValueError:
        gpus = 0
    if raw is None or gpus <= 0:
        return [
            f"GPU NodePool {_name(props)!r} has no positive {GPU_RESOURCE} limit "
            f"(got {raw!r}); set spec.limits[{GPU_RESOURCE!r}] as its spend ceiling."
        ]
    if gpus > MAX_GPU_LIMIT:
        return [
            f"GPU NodePool {_name(props)!r} allows {gpus} GPUs, above the kit's "
            f"{MAX_GPU_LIMIT}; lower spec.limits[{GPU_RESOURCE!r}]."
        ]
    return []


def check_gpu_instance_families(resource_type: str, props: Props) -> list[str]:
    """GPU node pools name their instance families, all from the allow-list."""
    if not _is_gpu_pool(resource_type, props):
        return []
    families = [item for item in _requirements(props) if item.get("key") == FAMILY_KEY]
    allowed = ", ".join(ALLOWED_GPU_FAMILIES)
    if len(families) != 1 or families[0].get("operator") != "In":
        return [
            f"GPU NodePool {_name(props)!r} does not pin {FAMILY_KEY} with one "
            f"'In' requirement; list families from: {allowed}."
        ]
    refused = [
        v for v in families[0].get("values") or [] if v not in ALLOWED_GPU_FAMILIES
    ]
    if refused or not families[0].get("values"):
        return [
            f"GPU NodePool {_name(props)!r} allows families {refused or '[]'}; "
            f"accepted: {allowed}."
        ]
    return []


GPU_RULES: Final[dict[str, tuple[Rule, str]]] = {
    "gpu-pool-limits": (
        check_gpu_pool_limits,
        "GPU node pools carry a positive nvidia.com/gpu limit (their spend ceiling).",
    ),
    "gpu-instance-families": (
        check_gpu_instance_families,
        "GPU node pools launch only allow-listed instance families.",
    ),
}


def _is_gpu_pool(resource_type: str, props: Props) -> bool:
    if resource_type != NODE_POOL:
        return False
    template = ((props.get("spec") or {}).get("template") or {}).get("spec") or {}
    tainted = any(t.get("key") == GPU_RESOURCE for t in template.get("taints") or [])
    selects_gpus = any(item.get("key") in GPU_KEYS for item in _requirements(props))
    limited = GPU_RESOURCE in ((props.get("spec") or {}).get("limits") or {})
    return tainted or selects_gpus or limited


def _requirements(props: Props) -> list[dict[str, Any]]:
    template = ((props.get("spec") or {}).get("template") or {}).get("spec") or {}
    found: list[dict[str, Any]] = template.get("requirements") or []
    return found


def _name(props: Props) -> str:
    return str((props.get("metadata") or {}).get("name", "?"))
