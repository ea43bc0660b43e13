"""The large stack's own config: cluster, node pools, NIM tiers, router sizing.

`parse_large_config` reads the `# Large stack` keys of `Pulumi.yaml` from the
validated `KitConfig` (its raw strings), before any resource is declared. The
NIM services to deploy are not config: they are the policy's tiers whose
provider `base_url` is an in-cluster service on port 8000
(`http://<service>.<namespace>.svc:8000/v1`). Config only sizes them.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from infra.config import (
    _CERT_ARN,
    WILDCARD_TIER,
    KitConfig,
    StackConfigError,
    _Reader,
)
from infra.policy_pack.gpu_rules import ALLOWED_GPU_FAMILIES
from infra.router_policy import RouterPolicy
from llm_router.policy.schema import OpenAIProvider

NIM_PORT: Final = 8000
# GPU instance families Karpenter may launch: the policy pack's allow-list,
# so a family refused there is refused here first.
GPU_FAMILIES: Final = ALLOWED_GPU_FAMILIES
_AMI_ALIAS = re.compile(r"^al2023@v\d{8}$")
_FAMILY = re.compile(r"^[a-z]+\d+[a-z]*$")
_SERVICE_HOST = re.compile(
    r"^(?P<service>[a-z0-9]([-a-z0-9]*[a-z0-9])?)\."
    r"(?P<namespace>[a-z0-9]([-a-z0-9]*[a-z0-9])?)\.svc(\.cluster\.local)?$"
)
_IMAGE = re.compile(r"^(?P<repository>[\w.\-/:]+?/[\w.\-/]+):(?P<tag>[\w.\-]+)$")
_DURATION = re.compile(r"^\d+(s|m|h)$")
_K8S_VERSION = re.compile(r"^1\.\d{2}$")
_PRINCIPAL_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:(role|user)/[\w+=,.@/-]+$")


@dataclass(frozen=True)
class NimTier:
    """One policy tier served by a NIM in the cluster, and its sizing."""

    tier: str
    model: str
    service: str
    namespace: str
    repository: str
    tag: str
    gpus: int
    cpu: float
    memory_gi: float
    min_replicas: int
    max_replicas: int
    cache_size_gi: int


@dataclass(frozen=True)
class GpuPools:
    """Karpenter's GPU node pools: families, the Spot ceiling, the fallback."""

    families: tuple[str, ...]
    spot_max_gpus: int
    spot_max_cpu: int
    spot_max_memory_gi: int
    on_demand_max_gpus: int
    consolidate_after: str


@dataclass(frozen=True)
class LargeConfig:
    """Everything the large stack needs beyond `KitConfig`, validated."""

    kubernetes_version: str
    public_access_cidrs: tuple[str, ...]
    admin_arns: tuple[str, ...]
    system_instance_types: tuple[str, ...]
    system_nodes: int
    ami_alias: str
    gpu: GpuPools
    cpu_families: tuple[str, ...]
    cpu_max_cpu: int
    nim_tiers: tuple[NimTier, ...]
    namespace: str
    router_min_replicas: int
    router_max_replicas: int
    router_cpu_target_percent: int
    router_cpu_millis: int
    router_memory_mb: int
    triton_gpu: bool
    triton_min_replicas: int
    triton_max_replicas: int
    certificate_arn: str
    ingress_cidrs: tuple[str, ...]


def parse_large_config(config: KitConfig) -> LargeConfig:
    """Validate the large stack's keys; see the module docstring."""
    reader = _Reader(config.raw)
    certificate_arn = reader.text("certificateArn")
    if not _CERT_ARN.match(certificate_arn):
        msg = (
            f"certificateArn = {certificate_arn!r}; the large stack needs the ARN "
            "of an ACM certificate for the router's HTTPS load balancer "
            "(arn:aws:acm:<region>:<account>:certificate/<id>)."
        )
        raise StackConfigError(msg)

    version = reader.text("clusterVersion")
    if not _K8S_VERSION.match(version):
        msg = f"clusterVersion = {version!r}; give a Kubernetes minor such as '1.33'."
        raise StackConfigError(msg)

    ami_alias = reader.text("nodeAmiAlias")
    if not _AMI_ALIAS.match(ami_alias):
        msg = (
            f"nodeAmiAlias = {ami_alias!r}; pin an AL2023 release as "
            "'al2023@vYYYYMMDD' ('al2023@latest' would roll every node whenever "
            "AWS publishes an AMI)."
        )
        raise StackConfigError(msg)

    gpu = _parse_gpu_pools(reader)
    nim_tiers = _parse_nim_tiers(reader, config.policy)
    for tier in nim_tiers:
        needed = tier.gpus * tier.max_replicas
        if needed > gpu.spot_max_gpus:
            msg = (
                f"Tier {tier.tier!r} may scale to {tier.max_replicas} replicas of "
                f"{tier.gpus} GPUs ({needed}), above gpuSpotMaxGpus "
                f"({gpu.spot_max_gpus}), its GPU pool's ceiling. Raise "
                "gpuSpotMaxGpus or lower nimMaxReplicas or nimGpus."
            )
            raise StackConfigError(msg)

    max_replicas = reader.integer("routerMaxReplicas", low=1)
    min_replicas = reader.integer("routerMinReplicas", low=1, high=max_replicas)
    triton_max = reader.integer("tritonMaxReplicas", low=1)
    return LargeConfig(
        kubernetes_version=version,
        public_access_cidrs=_parse_public_cidrs(reader),
        admin_arns=_parse_admin_arns(reader),
        system_instance_types=tuple(reader.text_list("systemNodeInstanceTypes")),
        system_nodes=reader.integer("systemNodeCount", low=1, high=10),
        ami_alias=ami_alias,
        gpu=gpu,
        cpu_families=_parse_families(reader, "cpuInstanceFamilies", allowed=None),
        cpu_max_cpu=reader.integer("cpuPoolMaxCpu", low=1),
        nim_tiers=nim_tiers,
        namespace=_parse_namespace(reader.text("routerNamespace")),
        router_min_replicas=min_replicas,
        router_max_replicas=max_replicas,
        router_cpu_target_percent=reader.integer(
            "routerCpuTargetPercent", low=10, high=95
        ),
        router_cpu_millis=reader.integer("routerCpuMillis", low=100),
        router_memory_mb=reader.integer("routerMemoryMb", low=256),
        triton_gpu=reader.boolean("tritonGpu"),
        triton_min_replicas=reader.integer("tritonMinReplicas", low=1, high=triton_max),
        triton_max_replicas=triton_max,
        certificate_arn=certificate_arn,
        ingress_cidrs=config.medium.ingress_cidrs,
    )


def in_cluster_service(url: str) -> tuple[str, str] | None:
    """`(service, namespace)` when `url` names a NIM service in the cluster."""
    parts = urlsplit(url)
    match = _SERVICE_HOST.match(parts.hostname or "")
    if parts.scheme != "http" or match is None:
        return None
    return match["service"], match["namespace"]


def _parse_public_cidrs(reader: _Reader) -> tuple[str, ...]:
    cidrs = tuple(reader.text_list("clusterPublicAccessCidrs"))
    for cidr in cidrs:
        try:
            network = ipaddress.ip_network(cidr)
        except ValueError:
            msg = f"clusterPublicAccessCidrs has {cidr!r}, which is not a CIDR block."
            raise StackConfigError(msg) from None
        if network.prefixlen == 0:
            msg = (
                f"clusterPublicAccessCidrs has {cidr!r}, which opens the Kubernetes "
                "API to the internet. List your networks, or leave the list empty "
                "for a private endpoint."
            )
            raise StackConfigError(msg)
    return cidrs


def _parse_admin_arns(reader: _Reader) -> tuple[str, ...]:
    arns = tuple(reader.text_list("clusterAdminArns"))
    for arn in arns:
        if not _PRINCIPAL_ARN.match(arn):
            msg = (
                f"clusterAdminArns has {arn!r}; give IAM role or user ARNs "
                "(arn:aws:iam::<account>:role/<name>)."
            )
            raise StackConfigError(msg)
    return arns


def _parse_gpu_pools(reader: _Reader) -> GpuPools:
    consolidate_after = reader.text("gpuConsolidateAfter")
    if not _DURATION.match(consolidate_after):
        msg = (
            f"gpuConsolidateAfter = {consolidate_after!r}; give a duration such "
            "as '10m' (seconds s, minutes m or hours h)."
        )
        raise StackConfigError(msg)
    return GpuPools(
        families=_parse_families(reader, "gpuInstanceFamilies", allowed=GPU_FAMILIES),
        spot_max_gpus=reader.integer("gpuSpotMaxGpus", low=1),
        spot_max_cpu=reader.integer("gpuSpotMaxCpu", low=1),
        spot_max_memory_gi=reader.integer("gpuSpotMaxMemoryGi", low=1),
        on_demand_max_gpus=reader.integer("gpuOnDemandMaxGpus", low=1),
        consolidate_after=consolidate_after,
    )


def _parse_families(
    reader: _Reader, key: str, *, allowed: tuple[str, ...] | None
) -> tuple[str, ...]:
    families = tuple(reader.text_list(key))
    if not families:
        msg = f"{key} is empty; list at least one EC2 instance family."
        raise StackConfigError(msg)
    for family in families:
        if not _FAMILY.match(family) or (allowed and family not in allowed):
            accepted = ", ".join(allowed) if allowed else "names such as m7g or c7i"
            msg = f"{key} has {family!r}; accepted families: {accepted}."
            raise StackConfigError(msg)
    return families


def _parse_namespace(value: str) -> str:
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", value):
        msg = f"routerNamespace = {value!r}; give a Kubernetes namespace name."
        raise StackConfigError(msg)
    return value


def _parse_nim_tiers(reader: _Reader, policy: RouterPolicy) -> tuple[NimTier, ...]:
    served = _in_cluster_tiers(policy)
    # Entries may name any tier of the policy, so a tier can move between
    # NIM and a managed provider without editing these keys; only the tiers
    # served in the cluster use them.
    names = policy.tier_names
    images = _text_map(reader, "nimImages", names)
    gpus = reader.tier_map("nimGpus", names)
    cpus = reader.tier_map("nimCpu", names)
    memories = reader.tier_map("nimMemoryGi", names)
    lows = reader.tier_map("nimMinReplicas", names)
    highs = reader.tier_map("nimMaxReplicas", names)
    sizes = reader.tier_map("nimCacheSizeGi", names)

    tiers = []
    for tier, (service, namespace) in served.items():
        image = images.get(tier)
        match = _IMAGE.match(image or "")
        if match is None:
            msg = (
                f"nimImages has no pinned image for tier {tier!r} (got {image!r}); "
                f"the policy serves it in the cluster at {service}.{namespace}. Add "
                f"'{tier}=nvcr.io/nim/<org>/<model>:<tag>'."
            )
            raise StackConfigError(msg)
        if highs[tier] < lows[tier]:
            msg = (
                f"nimMaxReplicas[{tier}] ({highs[tier]:g}) is below "
                f"nimMinReplicas[{tier}] ({lows[tier]:g})."
            )
            raise StackConfigError(msg)
        tiers.append(
            NimTier(
                tier=tier,
                model=policy.policy.tiers[tier].model,
                service=service,
                namespace=namespace,
                repository=match["repository"],
                tag=match["tag"],
                gpus=_whole("nimGpus", tier, gpus[tier]),
                cpu=cpus[tier],
                memory_gi=memories[tier],
                min_replicas=_whole("nimMinReplicas", tier, lows[tier]),
                max_replicas=_whole("nimMaxReplicas", tier, highs[tier]),
                cache_size_gi=_whole("nimCacheSizeGi", tier, sizes[tier]),
            )
        )
    return tuple(tiers)


def _in_cluster_tiers(policy: RouterPolicy) -> dict[str, tuple[str, str]]:
    """Tier -> (service, namespace) for the tiers the cluster must serve."""
    served: dict[str, tuple[str, str]] = {}
    owners: dict[tuple[str, str], str] = {}
    for name, tier in policy.policy.tiers.items():
        provider = policy.policy.providers[tier.provider]
        if not isinstance(provider, OpenAIProvider):
            continue
        found = in_cluster_service(provider.base_url)
        if found is None:
            continue
        port = urlsplit(provider.base_url).port
        if port != NIM_PORT:
            msg = (
                f"{policy.source}: provider {tier.provider!r} points at "
                f"{provider.base_url!r}; the stack's NIM services listen on port "
                f"{NIM_PORT}."
            )
            raise StackConfigError(msg)
        if found in owners:
            msg = (
                f"{policy.source}: tiers {owners[found]!r} and {name!r} both point "
                f"at {found[0]}.{found[1]}; give each tier its own NIM service."
            )
            raise StackConfigError(msg)
        owners[found] = name
        served[name] = found
    return served


def _text_map(reader: _Reader, key: str, tiers: list[str]) -> Mapping[str, str]:
    """`tier=text` entries; unlike numbers, text has no '*' default."""
    found: dict[str, str] = {}
    for entry in reader.text_list(key):
        tier, sep, value = entry.partition("=")
        if not sep or tier.strip() == WILDCARD_TIER or tier.strip() not in tiers:
            msg = (
                f"{key} has {entry!r}; write entries as tier=value for tiers of "
                f"the policy ({', '.join(tiers)}); images have no '*' default."
            )
            raise StackConfigError(msg)
        found[tier.strip()] = value.strip()
    return found


def _whole(key: str, tier: str, value: float) -> int:
    if value != int(value):
        msg = f"{key}[{tier}] = {value:g}; expected a whole number."
        raise StackConfigError(msg)
    return int(value)
