"""Stack configuration: read every key once, validate it, before any resource.

Defaults live in one place, the typed schema in `Pulumi.yaml`; the CLI hands
them to the program with the stack's own values. `parse_config` takes those
raw strings (what `pulumi config` stores) and returns a frozen `KitConfig`, or
raises `StackConfigError` naming the key, the bad value and what is accepted.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, cast

import pulumi

from infra.router_policy import RouterPolicy, load_router_policy

PROJECT_ROOT: Final = Path(__file__).resolve().parent.parent
STACK_SIZES: Final = ("small", "medium", "large")
WILDCARD_TIER: Final = "*"

# CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION_DAYS: Final = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827,
    2192, 2557, 2922, 3288, 3653,
)  # fmt: skip
# Fargate's valid CPU units and, for each, the memory range in MiB.
FARGATE_MEMORY_MB: Final[dict[int, tuple[int, int]]] = {
    256: (512, 2048),
    512: (1024, 4096),
    1024: (2048, 8192),
    2048: (4096, 16384),
    4096: (8192, 30720),
}
# "None" is not offered: tasks in private subnets reach ECR, Logs and Secrets
# Manager through the NAT gateway (only bedrock-runtime has an endpoint).
NAT_STRATEGIES: Final = ("Single", "OnePerAz")

StackSize = Literal["small", "medium", "large"]
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CERT_ARN = re.compile(r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[\w-]+$")


class StackConfigError(ValueError):
    """A stack config value is missing or invalid."""


@dataclass(frozen=True)
class TierAlarms:
    """Alarm thresholds for one tier."""

    hourly_cost_usd: float
    daily_cost_usd: float
    hourly_tokens: int
    monthly_budget_usd: float


@dataclass(frozen=True)
class AlarmConfig:
    """Where alarms go and when they fire."""

    emails: tuple[str, ...]
    tiers: Mapping[str, TierAlarms]
    bedrock_throttles_per_5min: int
    anomaly_alert_usd: float


@dataclass(frozen=True)
class SmallConfig:
    """Lambda sizing for the small stack."""

    memory_mb: int
    timeout_s: int
    reserved_concurrency: int


@dataclass(frozen=True)
class MediumConfig:
    """Network, service and cache sizing for the medium stack."""

    certificate_arn: str
    ingress_cidrs: tuple[str, ...]
    vpc_cidr: str
    nat_gateways: str
    task_cpu: int
    task_memory_mb: int
    min_tasks: int
    max_tasks: int
    cpu_target_percent: int
    requests_per_target_per_minute: int
    redis_node_type: str
    redis_replicas: int


@dataclass(frozen=True)
class KitConfig:
    """Everything a stack builder needs, validated."""

    project: str
    stack: str
    size: StackSize
    region: str
    policy: RouterPolicy
    tags: Mapping[str, str]
    log_retention_days: int
    emf_namespace: str
    image_build_on_preview: bool
    alarms: AlarmConfig
    small: SmallConfig
    medium: MediumConfig
    raw: Mapping[str, str]
    api_keys: pulumi.Input[str] = ""

    @property
    def name(self) -> str:
        """The root of every resource name in this stack."""
        return f"llmr-{self.stack}"


def parse_config(
    raw: Mapping[str, str],
    *,
    project: str,
    stack: str,
    region: str,
    api_keys: pulumi.Input[str] = "",
    root: Path = PROJECT_ROOT,
) -> KitConfig:
    """Validate the raw config strings of one stack; see the module docstring."""
    reader = _Reader(raw)
    size = _parse_size(reader.text("stackSize"), stack)
    policy = load_router_policy(reader.text("policyFile"), root=root, region=region)
    tags = {
        "Project": project,
        "Stack": stack,
        "ManagedBy": "pulumi",
        "CostCenter": reader.text("costCenter"),
    }

    retention = reader.integer("logRetentionDays")
    if retention not in LOG_RETENTION_DAYS:
        msg = (
            f"logRetentionDays = {retention}; CloudWatch Logs accepts "
            f"{', '.join(map(str, LOG_RETENTION_DAYS))}."
        )
        raise StackConfigError(msg)

    return KitConfig(
        project=project,
        stack=stack,
        size=size,
        region=region,
        policy=policy,
        tags=tags,
        log_retention_days=retention,
        emf_namespace=reader.text("emfNamespace"),
        image_build_on_preview=reader.boolean("imageBuildOnPreview"),
        alarms=_parse_alarms(reader, policy.tier_names),
        small=_parse_small(reader),
        medium=_parse_medium(reader, required=size == "medium"),
        raw=dict(raw),
        api_keys=api_keys,
    )


def _parse_size(value: str, stack: str) -> StackSize:
    chosen = value or stack
    if chosen not in STACK_SIZES:
        where = "stackSize" if value else f"the stack name {stack!r}"
        msg = (
            f"Cannot tell the stack size from {where} ({chosen!r}). "
            f"Set stackSize to one of: {', '.join(STACK_SIZES)}."
        )
        raise StackConfigError(msg)
    return cast(StackSize, chosen)


def _parse_alarms(reader: _Reader, tiers: list[str]) -> AlarmConfig:
    emails = tuple(reader.text_list("alarmEmails"))
    for email in emails:
        if not _EMAIL.match(email):
            msg = f"alarmEmails has {email!r}, which is not an e-mail address."
            raise StackConfigError(msg)

    hourly = reader.tier_map("hourlyCostAlarmUsd", tiers)
    daily = reader.tier_map("dailyCostAlarmUsd", tiers)
    tokens = reader.tier_map("hourlyTokenAlarm", tiers)
    budgets = reader.tier_map("monthlyBudgetUsd", tiers)
    return AlarmConfig(
        emails=emails,
        tiers={
            tier: TierAlarms(
                hourly_cost_usd=hourly[tier],
                daily_cost_usd=daily[tier],
                hourly_tokens=round(tokens[tier]),
                monthly_budget_usd=budgets[tier],
            )
            for tier in tiers
        },
        bedrock_throttles_per_5min=reader.integer("bedrockThrottleAlarm", low=1),
        anomaly_alert_usd=reader.number("anomalyAlertUsd"),
    )


def _parse_small(reader: _Reader) -> SmallConfig:
    return SmallConfig(
        memory_mb=reader.integer("lambdaMemoryMb", low=128, high=10240),
        timeout_s=reader.integer("lambdaTimeoutSeconds", low=1, high=900),
        reserved_concurrency=reader.integer(
            "lambdaReservedConcurrency", low=1, high=1000
        ),
    )


def _parse_medium(reader: _Reader, *, required: bool) -> MediumConfig:
    certificate_arn = reader.text("certificateArn")
    if required and not _CERT_ARN.match(certificate_arn):
        msg = (
            f"certificateArn = {certificate_arn!r}; the medium stack needs the ARN "
            "of an ACM certificate for the ALB's HTTPS listener "
            "(arn:aws:acm:<region>:<account>:certificate/<id>)."
        )
        raise StackConfigError(msg)

    cidrs = tuple(reader.text_list("ingressCidrs"))
    for cidr in (*cidrs, reader.text("vpcCidr")):
        try:
            ipaddress.ip_network(cidr)
        except ValueError:
            msg = f"{cidr!r} in ingressCidrs or vpcCidr is not a CIDR block."
            raise StackConfigError(msg) from None

    nat = reader.text("natGateways")
    if nat not in NAT_STRATEGIES:
        msg = (
            f"natGateways = {nat!r}; use one of {', '.join(NAT_STRATEGIES)} (the "
            "private tasks pull images and secrets through the NAT gateway)."
        )
        raise StackConfigError(msg)

    cpu = reader.integer("taskCpu")
    memory = reader.integer("taskMemoryMb")
    if cpu not in FARGATE_MEMORY_MB:
        accepted = ", ".join(map(str, FARGATE_MEMORY_MB))
        msg = f"taskCpu = {cpu}; Fargate accepts {accepted}."
        raise StackConfigError(msg)
    low, high = FARGATE_MEMORY_MB[cpu]
    if not low <= memory <= high:
        msg = (
            f"taskMemoryMb = {memory}; with taskCpu {cpu} Fargate accepts {low}-{high}."
        )
        raise StackConfigError(msg)

    min_tasks = reader.integer("minTasks", low=1)
    max_tasks = reader.integer("maxTasks", low=1)
    if max_tasks < min_tasks:
        msg = f"maxTasks ({max_tasks}) is below minTasks ({min_tasks})."
        raise StackConfigError(msg)

    return MediumConfig(
        certificate_arn=certificate_arn,
        ingress_cidrs=cidrs,
        vpc_cidr=reader.text("vpcCidr"),
        nat_gateways=nat,
        task_cpu=cpu,
        task_memory_mb=memory,
        min_tasks=min_tasks,
        max_tasks=max_tasks,
        cpu_target_percent=reader.integer("cpuTargetPercent", low=10, high=95),
        requests_per_target_per_minute=reader.integer(
            "requestsPerTargetPerMinute", low=1
        ),
        redis_node_type=reader.text("redisNodeType"),
        redis_replicas=reader.integer("redisReplicas", low=0, high=5),
    )


class _Reader:
    """Typed access to the raw config strings, with errors that name the key."""

    def __init__(self, raw: Mapping[str, str]) -> None:
        self._raw = raw

    def text(self, key: str) -> str:
        try:
            return self._raw[key]
        except KeyError:
            msg = (
                f"Config key {key!r} is not set. Declare it in Pulumi.yaml with a "
                "default or set it with `pulumi config set`."
            )
            raise StackConfigError(msg) from None

    def integer(
        self, key: str, *, low: int | None = None, high: int | None = None
    ) -> int:
        value = self.text(key)
        try:
            number = int(value)
        except ValueError:
            msg = f"{key} = {value!r}; expected a whole number."
            raise StackConfigError(msg) from None
        if (low is not None and number < low) or (high is not None and number > high):
            bounds = f"{'' if low is None else low}..{'' if high is None else high}"
            msg = f"{key} = {number}; expected a value in [{bounds}]."
            raise StackConfigError(msg)
        return number

    def number(self, key: str) -> float:
        return _positive(key, self.text(key))

    def boolean(self, key: str) -> bool:
        value = self.text(key).lower()
        if value not in {"true", "false"}:
            msg = f"{key} = {value!r}; expected true or false."
            raise StackConfigError(msg)
        return value == "true"

    def text_list(self, key: str) -> list[str]:
        value = self.text(key)
        try:
            items = json.loads(value)
        except json.JSONDecodeError:
            items = None
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            msg = f"{key} = {value!r}; expected a list of strings."
            raise StackConfigError(msg)
        return items

    def tier_map(self, key: str, tiers: list[str]) -> dict[str, float]:
        """Parse `tier=value` entries; `*=value` covers tiers not listed."""
        given: dict[str, float] = {}
        for entry in self.text_list(key):
            tier, sep, value = entry.partition("=")
            tier = tier.strip()
            if not sep or (tier not in tiers and tier != WILDCARD_TIER):
                msg = (
                    f"{key} has {entry!r}; write entries as tier=value with a tier "
                    f"of the policy ({', '.join(tiers)}) or '*' for the rest."
                )
                raise StackConfigError(msg)
            given[tier] = _positive(f"{key}[{tier}]", value.strip())
        missing = [t for t in tiers if t not in given]
        if missing and WILDCARD_TIER not in given:
            msg = (
                f"{key} sets no value for tiers {missing}; add tier=value entries "
                "or a '*=value' default."
            )
            raise StackConfigError(msg)
        return {t: given[t] if t in given else given[WILDCARD_TIER] for t in tiers}


def _positive(key: str, value: str) -> float:
    try:
        parsed = float(value)
    except ValueError:
        msg = f"{key} = {value!r}; expected a positive number."
        raise StackConfigError(msg) from None
    if not parsed > 0:
        msg = f"{key} = {value!r}; expected a positive number."
        raise StackConfigError(msg)
    return parsed
