"""What every stack shares: the policy, least-privilege IAM, tags, cost alarms."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from infra_support import (
    FIXTURE_POLICY,
    as_list,
    container_environment,
    lambda_environment,
    policy_documents,
    secret_value,
)

from infra import metrics
from infra.mocking import ProgramRun, is_taggable, run_program
from infra.policy_pack.rules import REQUIRED_TAGS

ROOT = Path(__file__).resolve().parents[2]
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
TIERS = ("small", "medium", "large")
# Actions AWS grants only on "*": they have no resource-level permissions.
RESOURCE_LESS_ACTIONS = {"ecr:GetAuthorizationToken"}


def deployed_policy(run: ProgramRun) -> str:
    """The policy text the stack hands to the router."""
    if run.stack == "small":
        return lambda_environment(run)["LLM_ROUTER_POLICY"]
    return container_environment(run)["LLM_ROUTER_POLICY"]


def test_small_and_medium_deploy_the_same_policy_bytes() -> None:
    small = run_program("small", {"policyFile": FIXTURE_POLICY})
    medium = run_program("medium", {"policyFile": FIXTURE_POLICY})

    text = (ROOT / FIXTURE_POLICY).read_text(encoding="utf-8")
    assert deployed_policy(small).encode() == deployed_policy(medium).encode()
    assert deployed_policy(small) == text, "the file must reach the router unchanged"


def test_the_default_policy_is_the_routers_bedrock_example(
    stack_runs: list[ProgramRun],
) -> None:
    text = (ROOT / "services/router/config/bedrock.yaml").read_text(encoding="utf-8")

    for run in stack_runs:
        assert deployed_policy(run) == text, run.stack


def test_no_policy_allows_a_wildcard_action(stack_runs: list[ProgramRun]) -> None:
    for run in stack_runs:
        for resource, document in policy_documents(run):
            for statement in document["Statement"]:
                actions = as_list(statement["Action"])
                for action in actions:
                    assert action != "*", resource.name
                    assert not action.endswith(":*"), (resource.name, action)
                if "*" in as_list(statement["Resource"]):
                    assert set(actions) <= RESOURCE_LESS_ACTIONS, (
                        resource.name,
                        actions,
                    )


def test_bedrock_is_invoked_only_through_the_tier_profiles(
    stack_runs: list[ProgramRun],
) -> None:
    for run in stack_runs:
        profiles = sorted(run.outputs["tierProfiles"].values())
        bedrock = [
            statement
            for _, document in policy_documents(run)
            for statement in document["Statement"]
            if any(a.startswith("bedrock:") for a in as_list(statement["Action"]))
        ]

        assert bedrock, run.stack
        for statement in bedrock:
            assert sorted(as_list(statement["Action"])) == [
                "bedrock:InvokeModel",
                "bedrock:InvokeModelWithResponseStream",
            ]
            resources = as_list(statement["Resource"])
            if statement["Sid"] == "InvokeTierProfiles":
                assert sorted(resources) == profiles
                continue
            condition = statement["Condition"]["StringEquals"]
            assert sorted(condition["bedrock:InferenceProfileArn"]) == profiles
            assert all(":application-inference-profile/" not in r for r in resources)


def test_each_tier_profile_copies_its_model_and_carries_its_tier_tag() -> None:
    run = run_program("small", {"policyFile": FIXTURE_POLICY})
    profiles = {
        p.inputs["tags"]["Tier"]: p.inputs
        for p in run.of_type("aws:bedrock/inferenceProfile:InferenceProfile")
    }

    assert profiles["small"]["modelSource"]["copyFrom"] == (
        "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-micro-v1:0"
    )
    assert profiles["medium"]["modelSource"]["copyFrom"] == (
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-pro-v1:0"
    )
    assert profiles["large"]["region"] == "us-west-2"
    assert profiles["large"]["modelSource"]["copyFrom"].startswith(
        "arn:aws:bedrock:us-west-2:123456789012:inference-profile/us.anthropic."
    )


def test_every_taggable_resource_carries_the_kit_tags(
    stack_runs: list[ProgramRun],
) -> None:
    for run in stack_runs:
        taggable = [r for r in run.resources if r.custom and is_taggable(r.type)]
        assert len(taggable) > 20, run.stack
        for resource in taggable:
            tags = resource.inputs.get("tags", {})
            for key in REQUIRED_TAGS:
                assert tags.get(key), f"{resource.type} {resource.name} lacks {key}"
            assert tags["Stack"] == run.stack


def test_every_child_has_a_kit_component_as_parent(
    stack_runs: list[ProgramRun],
) -> None:
    for run in stack_runs:
        root = f"llmr-{run.stack}"
        for resource in run.resources:
            assert resource.name.startswith(root), resource.name
            if resource.type.startswith("llmrouter:index:") and resource.name == root:
                assert resource.parent_type == "pulumi:pulumi:Stack"
                continue
            assert resource.parent_type.startswith("llmrouter:index:"), (
                resource.type,
                resource.name,
            )


def alarms_by_name(run: ProgramRun) -> dict[str, dict[str, object]]:
    """Alarm inputs keyed by the part of the name after the component prefix."""
    prefix = f"llmr-{run.stack}-cost-"
    return {a.name.removeprefix(prefix): a.inputs for a in run.of_type(ALARM)}


def test_one_hourly_and_one_daily_cost_alarm_per_tier_with_thresholds() -> None:
    run = run_program(
        "medium",
        {
            "hourlyCostAlarmUsd": ["large=7.5", "*=1.25"],
            "dailyCostAlarmUsd": ["small=3", "*=40"],
        },
    )
    alarms = alarms_by_name(run)

    expected = {
        "small": (1.25, 3.0),
        "medium": (1.25, 40.0),
        "large": (7.5, 40.0),
    }
    for tier, (hourly, daily) in expected.items():
        for window, threshold, period in (
            ("hourly", hourly, 3600),
            ("daily", daily, 86400),
        ):
            alarm = alarms[f"{tier}-cost-{window}"]
            assert alarm["threshold"] == threshold, (tier, window)
            metric = next(q["metric"] for q in alarm["metricQueries"] if "metric" in q)
            assert metric["metricName"] == metrics.COST_USD
            assert metric["namespace"] == metrics.NAMESPACE
            assert metric["dimensions"] == {metrics.TIER_DIMENSION: tier}
            assert metric["period"] == period
            assert metric["stat"] == "Sum"
    cost_alarms = [name for name in alarms if "-cost-" in name]
    assert len(cost_alarms) == 2 * len(TIERS)


def test_alarms_cover_tokens_and_bedrock_errors_and_notify_the_topic(
    small_run: ProgramRun,
) -> None:
    alarms = alarms_by_name(small_run)
    topic = small_run.outputs["alarmTopicArn"]

    for tier in TIERS:
        tokens = alarms[f"{tier}-tokens-hourly"]
        names = {
            q["metric"]["metricName"] for q in tokens["metricQueries"] if "metric" in q
        }
        assert names == {metrics.INPUT_TOKENS, metrics.OUTPUT_TOKENS}
        assert tokens["threshold"] == 500000
        for label, metric in (
            ("throttles", metrics.BEDROCK_THROTTLES),
            ("server-errors", metrics.BEDROCK_SERVER_ERRORS),
        ):
            alarm = alarms[f"{tier}-bedrock-{label}"]
            queried = [q["metric"] for q in alarm["metricQueries"] if "metric" in q]
            assert {m["namespace"] for m in queried} == {metrics.BEDROCK_NAMESPACE}
            assert {m["metricName"] for m in queried} == {metric}
    for alarm in alarms.values():
        assert alarm["alarmActions"] == [topic]
        assert alarm["treatMissingData"] == "notBreaching"


def test_the_alarm_topic_is_encrypted_and_mails_the_configured_people() -> None:
    run = run_program("small", {"alarmEmails": ["ops@example.com", "fin@example.com"]})
    topic = run.one("aws:sns/topic:Topic")
    subscriptions = run.of_type("aws:sns/topicSubscription:TopicSubscription")
    key_policy = json.loads(run.one("aws:kms/key:Key").inputs["policy"])

    assert topic.inputs["kmsMasterKeyId"] == run.one("aws:kms/key:Key").outputs["arn"]
    assert sorted(s.inputs["endpoint"] for s in subscriptions) == [
        "fin@example.com",
        "ops@example.com",
    ]
    assert {s.inputs["protocol"] for s in subscriptions} == {"email"}
    publishers = key_policy["Statement"][1]["Principal"]["Service"]
    assert "cloudwatch.amazonaws.com" in publishers
    assert "budgets.amazonaws.com" in publishers


def test_the_dashboard_shows_every_required_metric_per_tier(
    small_run: ProgramRun,
) -> None:
    body = json.loads(
        small_run.one("aws:cloudwatch/dashboard:Dashboard").inputs["dashboardBody"]
    )
    lines = [
        (line[1], line[3], widget["properties"]["stat"])
        for widget in body["widgets"]
        for line in widget["properties"]["metrics"]
    ]

    for tier in TIERS:
        for name in (
            metrics.REQUESTS,
            metrics.INPUT_TOKENS,
            metrics.OUTPUT_TOKENS,
            metrics.COST_USD,
            metrics.FALLBACKS,
            metrics.CACHE_HITS,
        ):
            assert (name, tier, "Sum") in lines, (name, tier)
        assert (metrics.DECISION_LATENCY_MS, tier, "p95") in lines


def test_a_budget_per_tier_filters_on_the_tier_and_stack_tags(
    medium_run: ProgramRun,
) -> None:
    budgets = {
        b.inputs["tags"]["Tier"]: b.inputs
        for b in medium_run.of_type("aws:budgets/budget:Budget")
    }

    assert set(budgets) == set(TIERS)
    assert budgets["large"]["limitAmount"] == "400.00"
    assert budgets["small"]["limitAmount"] == "80.00"
    filters = budgets["small"]["filterExpression"]["ands"]
    assert [(f["tags"]["key"], f["tags"]["values"]) for f in filters] == [
        ("Tier", ["small"]),
        ("Stack", ["medium"]),
    ]
    for budget in budgets.values():
        assert budget["notifications"][0]["subscriberSnsTopicArns"] == [
            medium_run.outputs["alarmTopicArn"]
        ]


def test_cost_anomalies_are_watched_and_reported(small_run: ProgramRun) -> None:
    monitor = small_run.one("aws:costexplorer/anomalyMonitor:AnomalyMonitor")
    subscription = small_run.one(
        "aws:costexplorer/anomalySubscription:AnomalySubscription"
    ).inputs

    assert json.loads(monitor.inputs["monitorSpecification"])["Tags"]["Key"] == "Stack"
    assert subscription["monitorArnLists"] == [monitor.outputs["arn"]]
    assert subscription["subscribers"] == [
        {"type": "SNS", "address": small_run.outputs["alarmTopicArn"]}
    ]
    assert subscription["thresholdExpression"]["dimension"]["values"] == ["10"]


def test_api_keys_from_config_are_stored_as_a_secret() -> None:
    run = run_program("small", {"apiKeys": "k-one,k-two"})
    version = run.one("aws:secretsmanager/secretVersion:SecretVersion")

    assert secret_value(version.inputs["secretString"]) == "k-one,k-two"


@pytest.mark.parametrize("name", metrics.METRIC_NAMES)
def test_every_metric_name_is_one_the_router_emits(name: str) -> None:
    from llm_router.telemetry.emf import METRIC_UNITS

    assert name in METRIC_UNITS
