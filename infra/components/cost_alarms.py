"""Per-tier cost observability: alarms, a dashboard, budgets and anomaly alerts.

Alarms read the router's EMF metrics (`infra.metrics`): spend per tier over an
hour and over a day, token volume per tier over an hour. Bedrock's own throttle
and server-error counts cover the upstream side. Everything notifies one SNS
topic, encrypted with a key the alarm, budget and anomaly services may use.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra import metrics
from infra.config import AlarmConfig, KitConfig
from infra.dashboard import build_dashboard_body

Query = aws.cloudwatch.MetricAlarmMetricQueryArgsDict

HOUR = 3600
DAY = 86400
FIVE_MINUTES = 300
# Services that publish to the alarm topic: CloudWatch alarms, AWS Budgets
# and Cost Anomaly Detection.
PUBLISHERS = (
    "cloudwatch.amazonaws.com",
    "budgets.amazonaws.com",
    "costalerts.amazonaws.com",
)
# Key administration for the account, spelled out (no `kms:*`).
KEY_ADMIN_ACTIONS = (
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:Decrypt",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListAliases",
    "kms:ListGrants",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:RevokeGrant",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateKeyDescription",
)


@dataclass(frozen=True)
class BedrockTarget:
    """A Bedrock tier: its model id and the profile the router invokes."""

    tier: str
    model: str
    profile_arn: pulumi.Input[str]


@dataclass(frozen=True)
class CostAlarmsArgs:
    """Tiers to watch, their thresholds, and where the metrics live."""

    tiers: Sequence[str]
    bedrock: Sequence[BedrockTarget]
    alarms: AlarmConfig
    namespace: str
    region: str
    stack: str
    tags: Mapping[str, str]

    @classmethod
    def for_stack(
        cls, config: KitConfig, profile_arns: Mapping[str, pulumi.Input[str]]
    ) -> CostAlarmsArgs:
        """Watch every tier of the stack's policy, Bedrock ones by their profile."""
        return cls(
            tiers=config.policy.tier_names,
            bedrock=[
                BedrockTarget(
                    tier=tier.tier,
                    model=tier.model,
                    profile_arn=profile_arns[tier.tier],
                )
                for tier in config.policy.bedrock_tiers
            ],
            alarms=config.alarms,
            namespace=config.emf_namespace,
            region=config.region,
            stack=config.stack,
            tags=dict(config.tags),
        )


class CostAlarms(pulumi.ComponentResource):
    """Alarm topic, per-tier alarms, dashboard, budgets and an anomaly monitor."""

    topic: aws.sns.Topic
    dashboard: aws.cloudwatch.Dashboard

    def __init__(
        self,
        name: str,
        args: CostAlarmsArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("llmrouter:index:CostAlarms", name, None, opts)
        self._name = name
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)
        self._account = aws.get_caller_identity_output(
            opts=pulumi.InvokeOutputOptions(parent=self)
        ).account_id

        self.topic = self._declare_topic()
        for tier in args.tiers:
            self._declare_tier_alarms(tier)
        for target in args.bedrock:
            self._declare_bedrock_alarms(target)
            self._declare_budget(target.tier)
        self.dashboard = self._declare_dashboard()
        self._declare_anomaly_alerts()

        self.register_outputs(
            {"topicArn": self.topic.arn, "dashboardName": self.dashboard.dashboard_name}
        )

    def _declare_topic(self) -> aws.sns.Topic:
        key = aws.kms.Key(
            f"{self._name}-topic-key",
            description="Encrypts the llm-router alarm topic.",
            enable_key_rotation=True,
            policy=self._account.apply(_topic_key_policy),
            tags=dict(self._args.tags),
            opts=self._child,
        )
        topic = aws.sns.Topic(
            f"{self._name}-topic",
            kms_master_key_id=key.arn,
            tags=dict(self._args.tags),
            opts=self._child,
        )
        aws.sns.TopicPolicy(
            f"{self._name}-topic-policy",
            arn=topic.arn,
            policy=pulumi.Output.all(topic.arn, self._account).apply(
                lambda values: _topic_policy(values[0], values[1])
            ),
            opts=self._child,
        )
        for index, email in enumerate(self._args.alarms.emails):
            aws.sns.TopicSubscription(
                f"{self._name}-email-{index}",
                topic=topic.arn,
                protocol="email",
                endpoint=email,
                opts=self._child,
            )
        return topic

    def _declare_tier_alarms(self, tier: str) -> None:
        thresholds = self._args.alarms.tiers[tier]
        cost = self._tier_metric(metrics.COST_USD, tier)
        self._declare_alarm(
            f"{tier}-cost-hourly",
            f"Tier {tier} spent more than {thresholds.hourly_cost_usd} USD in an hour.",
            threshold=thresholds.hourly_cost_usd,
            queries=[cost("cost", HOUR), _expression("hourly", "FILL(cost, 0)")],
            tier=tier,
        )
        self._declare_alarm(
            f"{tier}-cost-daily",
            f"Tier {tier} spent more than {thresholds.daily_cost_usd} USD in a day.",
            threshold=thresholds.daily_cost_usd,
            queries=[cost("cost", DAY), _expression("daily", "FILL(cost, 0)")],
            tier=tier,
        )
        inputs = self._tier_metric(metrics.INPUT_TOKENS, tier)
        outputs = self._tier_metric(metrics.OUTPUT_TOKENS, tier)
        self._declare_alarm(
            f"{tier}-tokens-hourly",
            f"Tier {tier} used more than {thresholds.hourly_tokens} tokens in an hour.",
            threshold=thresholds.hourly_tokens,
            queries=[
                inputs("inp", HOUR),
                outputs("out", HOUR),
                _expression("tokens", "FILL(inp, 0) + FILL(out, 0)"),
            ],
            tier=tier,
        )

    def _declare_bedrock_alarms(self, target: BedrockTarget) -> None:
        limit = self._args.alarms.bedrock_throttles_per_5min
        for metric, label in (
            (metrics.BEDROCK_THROTTLES, "throttles"),
            (metrics.BEDROCK_SERVER_ERRORS, "server-errors"),
        ):
            # Bedrock may report a profile's calls under the model id or the
            # profile ARN; the larger of the two counts either way.
            self._declare_alarm(
                f"{target.tier}-bedrock-{label}",
                f"Bedrock {label} for tier {target.tier} reached {limit} in 5 minutes.",
                threshold=limit,
                queries=[
                    _bedrock_metric("bymodel", metric, target.model),
                    _bedrock_metric("byprofile", metric, target.profile_arn),
                    _expression(
                        label.replace("-", ""),
                        "MAX([FILL(bymodel, 0), FILL(byprofile, 0)])",
                    ),
                ],
                tier=target.tier,
                operator="GreaterThanOrEqualToThreshold",
            )

    def _declare_alarm(
        self,
        suffix: str,
        description: str,
        *,
        threshold: float,
        queries: list[Query],
        tier: str,
        operator: str = "GreaterThanThreshold",
    ) -> aws.cloudwatch.MetricAlarm:
        return aws.cloudwatch.MetricAlarm(
            f"{self._name}-{suffix}",
            alarm_description=description,
            comparison_operator=operator,
            threshold=threshold,
            evaluation_periods=1,
            datapoints_to_alarm=1,
            # No traffic means no spend: missing data is not a breach.
            treat_missing_data="notBreaching",
            metric_queries=queries,
            alarm_actions=[self.topic.arn],
            ok_actions=[self.topic.arn],
            tags={**self._args.tags, "Tier": tier},
            opts=self._child,
        )

    def _tier_metric(self, metric: str, tier: str) -> Callable[[str, int], Query]:
        namespace = self._args.namespace

        def query(query_id: str, period: int) -> Query:
            return {
                "id": query_id,
                "return_data": False,
                "metric": {
                    "namespace": namespace,
                    "metric_name": metric,
                    "dimensions": {metrics.TIER_DIMENSION: tier},
                    "period": period,
                    "stat": "Sum",
                },
            }

        return query

    def _declare_budget(self, tier: str) -> None:
        usd = self._args.alarms.tiers[tier].monthly_budget_usd
        notifications: list[aws.budgets.BudgetNotificationArgsDict] = [
            {
                "comparison_operator": "GREATER_THAN",
                "threshold_type": "PERCENTAGE",
                "notification_type": kind,
                "threshold": percent,
                "subscriber_sns_topic_arns": [self.topic.arn],
            }
            for kind, percent in (("ACTUAL", 80.0), ("FORECASTED", 100.0))
        ]
        # The tier's inference profile carries both tags, so the budget sees
        # this stack's tier and no other stack's.
        by_tags: aws.budgets.BudgetFilterExpressionArgsDict = {
            "ands": [
                {"tags": {"key": key, "values": [value], "match_options": ["EQUALS"]}}
                for key, value in (("Tier", tier), ("Stack", self._args.stack))
            ]
        }
        aws.budgets.Budget(
            f"{self._name}-{tier}-budget",
            budget_type="COST",
            time_unit="MONTHLY",
            limit_amount=f"{usd:.2f}",
            limit_unit="USD",
            filter_expression=by_tags,
            notifications=notifications,
            tags={**self._args.tags, "Tier": tier},
            opts=self._child,
        )

    def _declare_dashboard(self) -> aws.cloudwatch.Dashboard:
        return aws.cloudwatch.Dashboard(
            f"{self._name}-dashboard",
            dashboard_name=f"{self._name}-router",
            dashboard_body=build_dashboard_body(
                self._args.namespace, self._args.tiers, self._args.region
            ),
            opts=self._child,
        )

    def _declare_anomaly_alerts(self) -> None:
        monitor = aws.costexplorer.AnomalyMonitor(
            f"{self._name}-anomaly-monitor",
            monitor_type="CUSTOM",
            monitor_specification=json.dumps(
                {
                    "Tags": {
                        "Key": "Stack",
                        "Values": [self._args.stack],
                        "MatchOptions": ["EQUALS"],
                    }
                }
            ),
            tags=dict(self._args.tags),
            opts=self._child,
        )
        aws.costexplorer.AnomalySubscription(
            f"{self._name}-anomaly-alerts",
            frequency="IMMEDIATE",
            monitor_arn_lists=[monitor.arn],
            subscribers=[{"type": "SNS", "address": self.topic.arn}],
            threshold_expression={
                "dimension": {
                    "key": "ANOMALY_TOTAL_IMPACT_ABSOLUTE",
                    "match_options": ["GREATER_THAN_OR_EQUAL"],
                    "values": [f"{self._args.alarms.anomaly_alert_usd:g}"],
                }
            },
            tags=dict(self._args.tags),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.topic]),
        )


def _expression(query_id: str, expression: str) -> Query:
    return {"id": query_id, "expression": expression, "return_data": True}


def _bedrock_metric(query_id: str, metric: str, model_id: pulumi.Input[str]) -> Query:
    return {
        "id": query_id,
        "return_data": False,
        "metric": {
            "namespace": metrics.BEDROCK_NAMESPACE,
            "metric_name": metric,
            "dimensions": {"ModelId": model_id},
            "period": FIVE_MINUTES,
            "stat": "Sum",
        },
    }


def _topic_key_policy(account: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AccountAdministersKey",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                    "Action": list(KEY_ADMIN_ACTIONS),
                    "Resource": "*",
                },
                {
                    "Sid": "PublishersEncrypt",
                    "Effect": "Allow",
                    "Principal": {"Service": list(PUBLISHERS)},
                    "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                    "Resource": "*",
                    "Condition": {"StringEquals": {"aws:SourceAccount": account}},
                },
            ],
        },
        sort_keys=True,
    )


def _topic_policy(topic_arn: str, account: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "PublishersPublish",
                    "Effect": "Allow",
                    "Principal": {"Service": list(PUBLISHERS)},
                    "Action": "sns:Publish",
                    "Resource": topic_arn,
                    "Condition": {"StringEquals": {"aws:SourceAccount": account}},
                }
            ],
        },
        sort_keys=True,
    )
