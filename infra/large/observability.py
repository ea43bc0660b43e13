"""Metrics, dashboards, alerts and the EMF log path of the large stack.

In the cluster: kube-prometheus-stack scrapes the router, Triton and DCGM;
Grafana's sidecar loads the router dashboard from a labelled ConfigMap whose
JSON lives in `dashboards/llm-router.json`; a PrometheusRule alerts on each
tier's spend per hour and per day, from `llm_router_cost_usd_total`.

To CloudWatch: the router writes one EMF line per request to stdout. A Fluent
Bit DaemonSet tails only the router's container logs and ships each line
unchanged (`log_key log`) with the `json/emf` format header, so CloudWatch
extracts the metrics that `CostAlarms` (the same alarms as the other stacks)
read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pulumi_random as random

from infra.config import AlarmConfig
from infra.iam import statement
from infra.large.identity import (
    OidcProvider,
    RoleSpec,
    ServiceAccountRef,
    declare_pod_role,
)
from infra.large.karpenter import CPU_POOL, POOL_LABEL

DASHBOARD = Path(__file__).resolve().parent / "dashboards" / "llm-router.json"
NAMESPACE = "monitoring"
KPS_REPO = "https://prometheus-community.github.io/helm-charts"
KPS_VERSION = "79.5.0"
FLUENT_BIT_REPO = "https://fluent.github.io/helm-charts"
FLUENT_BIT_VERSION = "0.54.0"
FLUENT_BIT_ACCOUNT = "fluent-bit"
DASHBOARD_LABEL = "grafana_dashboard"
LOG_ACTIONS = (
    "logs:CreateLogStream",
    "logs:DescribeLogStreams",
    "logs:PutLogEvents",
)


@dataclass(frozen=True)
class ObservabilityArgs:
    """What to watch and where alerts and logs go."""

    cluster_name: str
    region: str
    router_namespace: str
    router_name: str
    router_container: str
    tiers: Sequence[str]
    alarms: AlarmConfig
    log_group_name: str
    log_retention_days: int
    oidc: OidcProvider
    provider: k8s.Provider
    ready: Sequence[pulumi.Resource]
    tags: Mapping[str, str]
    stack: str
    gpu_tiers: Sequence[str]
    alarm_topic_arn: pulumi.Input[str]


class Observability(pulumi.ComponentResource):
    """kube-prometheus-stack, the Grafana dashboard, alert rules and Fluent Bit."""

    stack: k8s.helm.v4.Chart
    log_group: aws.cloudwatch.LogGroup
    grafana_password: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: ObservabilityArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("llmrouter:index:Observability", name, None, opts)
        self._name = name
        self._args = args
        self._on_cluster = pulumi.ResourceOptions(
            parent=self, provider=args.provider, depends_on=list(args.ready)
        )

        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={"name": NAMESPACE},
            opts=self._on_cluster,
        )
        self._after_namespace = pulumi.ResourceOptions(
            parent=self,
            provider=args.provider,
            depends_on=[*args.ready, namespace],
        )
        self.stack = self._declare_prometheus_stack()
        self._declare_dashboard()
        after_crds = pulumi.ResourceOptions(
            parent=self, provider=args.provider, depends_on=[self.stack]
        )
        self._declare_monitors(after_crds)
        self._declare_cost_rules(after_crds)
        self.log_group = self._declare_log_shipping()
        for tier in args.gpu_tiers:
            self._declare_gpu_budget(tier)

        self.register_outputs({"logGroup": self.log_group.name})

    def _declare_prometheus_stack(self) -> k8s.helm.v4.Chart:
        password = random.RandomPassword(
            f"{self._name}-grafana-admin",
            length=32,
            special=False,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.grafana_password = pulumi.Output.secret(password.result)
        secret = k8s.core.v1.Secret(
            f"{self._name}-grafana-admin",
            metadata={"name": "grafana-admin", "namespace": NAMESPACE},
            string_data={"admin-user": "admin", "admin-password": password.result},
            opts=self._after_namespace,
        )
        select_all = {
            # Pick up every ServiceMonitor and rule, not only the chart's own.
            "serviceMonitorSelectorNilUsesHelmValues": False,
            "podMonitorSelectorNilUsesHelmValues": False,
            "ruleSelectorNilUsesHelmValues": False,
        }
        return k8s.helm.v4.Chart(
            f"{self._name}-kube-prometheus-stack",
            chart="kube-prometheus-stack",
            version=KPS_VERSION,
            repository_opts={"repo": KPS_REPO},
            namespace=NAMESPACE,
            values={
                "grafana": {
                    "admin": {
                        "existingSecret": "grafana-admin",
                        "userKey": "admin-user",
                        "passwordKey": "admin-password",
                    },
                    "sidecar": {
                        "dashboards": {
                            "enabled": True,
                            "label": DASHBOARD_LABEL,
                            "labelValue": "1",
                            "searchNamespace": "ALL",
                        }
                    },
                },
                "prometheus": {
                    "prometheusSpec": {
                        **select_all,
                        "retention": "15d",
                        "storageSpec": {
                            "volumeClaimTemplate": {
                                "spec": {
                                    "accessModes": ["ReadWriteOnce"],
                                    "resources": {"requests": {"storage": "50Gi"}},
                                }
                            }
                        },
                    }
                },
            },
            opts=pulumi.ResourceOptions.merge(
                self._after_namespace, pulumi.ResourceOptions(depends_on=[secret])
            ),
        )

    def _declare_dashboard(self) -> None:
        k8s.core.v1.ConfigMap(
            f"{self._name}-dashboard",
            metadata={
                "name": "llm-router-dashboard",
                "namespace": NAMESPACE,
                "labels": {DASHBOARD_LABEL: "1"},
            },
            data={DASHBOARD.name: DASHBOARD.read_text(encoding="utf-8")},
            opts=self._after_namespace,
        )

    def _declare_monitors(self, opts: pulumi.ResourceOptions) -> None:
        args = self._args
        for target, labels, port in (
            ("router", {"app.kubernetes.io/name": args.router_name}, "http"),
            (
                "triton",
                {"app.kubernetes.io/name": "triton", "llm-router.dev/port": "metrics"},
                "metrics",
            ),
        ):
            k8s.apiextensions.CustomResource(
                f"{self._name}-monitor-{target}",
                api_version="monitoring.coreos.com/v1",
                kind="ServiceMonitor",
                metadata={"name": target, "namespace": NAMESPACE},
                spec={
                    "namespaceSelector": {"matchNames": [args.router_namespace]},
                    "selector": {"matchLabels": labels},
                    "endpoints": [
                        {"port": port, "path": "/metrics", "interval": "15s"}
                    ],
                },
                opts=opts,
            )

    def _declare_cost_rules(self, opts: pulumi.ResourceOptions) -> None:
        k8s.apiextensions.CustomResource(
            f"{self._name}-cost-rules",
            api_version="monitoring.coreos.com/v1",
            kind="PrometheusRule",
            metadata={"name": "llm-router-cost", "namespace": NAMESPACE},
            spec={"groups": cost_rule_groups(self._args.tiers, self._args.alarms)},
            opts=opts,
        )

    def _declare_log_shipping(self) -> aws.cloudwatch.LogGroup:
        args = self._args
        log_group = aws.cloudwatch.LogGroup(
            f"{self._name}-router-logs",
            name=args.log_group_name,
            retention_in_days=args.log_retention_days,
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        role = declare_pod_role(
            f"{self._name}-fluent-bit",
            RoleSpec(
                account=ServiceAccountRef(NAMESPACE, FLUENT_BIT_ACCOUNT),
                statements=[
                    statement(
                        "ShipRouterLogs",
                        LOG_ACTIONS,
                        [pulumi.Output.concat(log_group.arn, ":*")],
                    )
                ],
                oidc=args.oidc,
                tags=args.tags,
            ),
            cluster_name=args.cluster_name,
            parent=self,
        )
        k8s.helm.v4.Chart(
            f"{self._name}-fluent-bit",
            chart="fluent-bit",
            version=FLUENT_BIT_VERSION,
            repository_opts={"repo": FLUENT_BIT_REPO},
            namespace=NAMESPACE,
            values={
                "serviceAccount": {
                    "name": FLUENT_BIT_ACCOUNT,
                    "annotations": {"eks.amazonaws.com/role-arn": role.arn},
                },
                # The router runs on the CPU pool only; so does its log agent.
                "nodeSelector": {POOL_LABEL: CPU_POOL},
                "resources": {
                    "requests": {"cpu": "50m", "memory": "64Mi"},
                    "limits": {"memory": "128Mi"},
                },
                "config": fluent_bit_config(
                    namespace=args.router_namespace,
                    pod_prefix=args.router_name,
                    container=args.router_container,
                    log_group=log_group.name,
                    region=args.region,
                ),
            },
            opts=self._after_namespace,
        )
        return log_group

    def _declare_gpu_budget(self, tier: str) -> None:
        """A monthly budget on the tier's GPU nodes (their Tier and Stack tags)."""
        args = self._args
        notifications: list[aws.budgets.BudgetNotificationArgsDict] = [
            {
                "comparison_operator": "GREATER_THAN",
                "threshold_type": "PERCENTAGE",
                "notification_type": kind,
                "threshold": percent,
                "subscriber_sns_topic_arns": [args.alarm_topic_arn],
            }
            for kind, percent in (("ACTUAL", 80.0), ("FORECASTED", 100.0))
        ]
        by_tags: aws.budgets.BudgetFilterExpressionArgsDict = {
            "ands": [
                {"tags": {"key": key, "values": [value], "match_options": ["EQUALS"]}}
                for key, value in (("Tier", tier), ("Stack", args.stack))
            ]
        }
        usd = args.alarms.tiers[tier].monthly_budget_usd
        aws.budgets.Budget(
            f"{self._name}-{tier}-gpu-budget",
            budget_type="COST",
            time_unit="MONTHLY",
            limit_amount=f"{usd:.2f}",
            limit_unit="USD",
            filter_expression=by_tags,
            notifications=notifications,
            tags={**args.tags, "Tier": tier},
            opts=pulumi.ResourceOptions(parent=self),
        )


def cost_rule_groups(tiers: Sequence[str], alarms: AlarmConfig) -> list[dict[str, Any]]:
    """Alert rules on each tier's spend per hour and per day (config thresholds)."""
    rules = []
    for tier in tiers:
        thresholds = alarms.tiers[tier]
        for window, limit, label in (
            ("1h", thresholds.hourly_cost_usd, "Hourly"),
            ("1d", thresholds.daily_cost_usd, "Daily"),
        ):
            spend = (
                f'sum(increase(llm_router_cost_usd_total{{tier="{tier}"}}[{window}]))'
            )
            rules.append(
                {
                    "alert": f"LlmRouter{label}TierCost",
                    "expr": f"{spend} > {limit:g}",
                    "labels": {"severity": "warning", "tier": tier},
                    "annotations": {
                        "summary": (
                            f"Tier {tier} spent more than {limit:g} USD in {window}."
                        ),
                        "description": (
                            f"Spend at the policy's prices over {window}: "
                            '{{ $value | printf "%.2f" }} USD.'
                        ),
                    },
                }
            )
    rules.append(
        {
            "alert": "LlmRouterClassifierFallingBack",
            "expr": (
                "sum(rate(llm_router_classifier_fallbacks_total[10m])) "
                "/ sum(rate(llm_router_decision_seconds_count[10m])) > 0.5"
            ),
            "for": "10m",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": (
                    "Over half the turns are classified in process: is Triton up?"
                )
            },
        }
    )
    return [{"name": "llm-router-cost", "rules": rules}]


def fluent_bit_config(
    *,
    namespace: str,
    pod_prefix: str,
    container: str,
    log_group: pulumi.Input[str],
    region: str,
) -> dict[str, pulumi.Input[str]]:
    """The Fluent Bit pipeline: router container logs -> CloudWatch as EMF."""
    path = f"/var/log/containers/{pod_prefix}-*_{namespace}_{container}-*.log"
    inputs = "\n".join(
        (
            "[INPUT]",
            "    Name tail",
            f"    Path {path}",
            "    multiline.parser cri",
            "    Tag router.*",
            "    Mem_Buf_Limit 16MB",
            "    Skip_Long_Lines On",
            "    Refresh_Interval 10",
        )
    )
    # Only lines with the EMF `_aws` key travel; access logs stay in the pod.
    filters = "\n".join(
        (
            "[FILTER]",
            "    Name grep",
            "    Match router.*",
            "    Regex log _aws",
        )
    )
    outputs = pulumi.Output.concat(
        "[OUTPUT]\n",
        "    Name cloudwatch_logs\n",
        "    Match router.*\n",
        f"    region {region}\n",
        "    log_group_name ",
        log_group,
        "\n",
        "    log_stream_prefix router-\n",
        "    auto_create_group Off\n",
        # Ship the line as the router wrote it, flagged as EMF.
        "    log_key log\n",
        "    log_format json/emf\n",
    )
    return {"inputs": inputs, "filters": filters, "outputs": outputs}


def load_dashboard() -> dict[str, Any]:
    """The router's Grafana dashboard, parsed."""
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return dashboard
