"""Dashboards, alert rules and the EMF log path, checked against the router."""

from __future__ import annotations

import json

from large_support import chart, metric_names, named

from infra.large.observability import DASHBOARD, load_dashboard
from infra.mocking import ProgramRun
from llm_router.telemetry.metrics import Metrics

# Metrics the dashboard reads from other exporters, named one by one.
EXTERNAL_METRICS = frozenset({"DCGM_FI_DEV_GPU_UTIL"})
TIERS = ("small", "medium", "large")


def dashboard_expressions() -> list[str]:
    """Every PromQL expression of every panel."""
    return [
        target["expr"]
        for panel in load_dashboard()["panels"]
        for target in panel["targets"]
    ]


def test_the_dashboard_reads_only_metrics_the_router_exports() -> None:
    exported = Metrics().names()
    read = set().union(*(metric_names(e) for e in dashboard_expressions()))

    unknown = read - exported - EXTERNAL_METRICS
    assert unknown == set(), f"not in the router's registry: {sorted(unknown)}"
    assert read >= EXTERNAL_METRICS
    assert len(read & exported) >= 10


def test_the_metric_check_would_catch_a_renamed_metric() -> None:
    assert metric_names(
        'sum by (tier) (rate(llm_router_costs_total{tier="x"}[5m])) / 2'
    ) == {"llm_router_costs_total"}
    assert "llm_router_costs_total" not in Metrics().names()


def test_the_dashboard_shows_every_view_the_issue_lists() -> None:
    panels = load_dashboard()["panels"]
    text = json.dumps(panels)

    for needle in (
        "sum by (task, tier) (rate(llm_router_routes_total",
        "llm_router_tokens_total",
        "increase(llm_router_cost_usd_total[1h])",
        "histogram_quantile(0.50, sum by (le) (rate(llm_router_decision_seconds_bucket",
        "histogram_quantile(0.95, sum by (le) (rate(llm_router_decision_seconds_bucket",
        "histogram_quantile(0.99, sum by (le) (rate(llm_router_decision_seconds_bucket",
        "llm_router_upstream_seconds_bucket",
        "llm_router_time_to_first_token_seconds_bucket",
        "llm_router_fallbacks_total",
        'llm_router_cache_lookups_total{result=\\"hit\\"}',
        "sum by (predicted, reported) (increase(llm_router_feedback_tasks_total",
        "DCGM_FI_DEV_GPU_UTIL",
    ):
        assert needle in text, needle
    [matrix] = [p for p in panels if p["type"] == "table"]
    assert matrix["transformations"][0]["options"]["rowField"] == "predicted"
    assert len({p["id"] for p in panels}) == len(panels)


def test_grafana_loads_the_repos_json_through_its_sidecar(
    large_run: ProgramRun,
) -> None:
    config_map = named(
        large_run, "kubernetes:core/v1:ConfigMap", "llm-router-dashboard"
    )
    stack = chart(large_run, "kube-prometheus-stack")
    sidecar = stack.inputs["values"]["grafana"]["sidecar"]["dashboards"]

    assert config_map.inputs["metadata"]["labels"] == {"grafana_dashboard": "1"}
    assert config_map.inputs["data"] == {"llm-router.json": DASHBOARD.read_text()}
    assert (sidecar["label"], sidecar["labelValue"]) == ("grafana_dashboard", "1")
    grafana = stack.inputs["values"]["grafana"]
    assert grafana["admin"]["existingSecret"] == "grafana-admin"


def test_alert_rules_fire_on_each_tiers_hourly_and_daily_cost(
    large_run: ProgramRun,
) -> None:
    rule = large_run.one("kubernetes:monitoring.coreos.com/v1:PrometheusRule")
    [group] = rule.inputs["spec"]["groups"]
    rules = group["rules"]
    exported = Metrics().names()

    expected = {
        ("small", "1h"): 3.0,
        ("small", "1d"): 40.0,
        ("medium", "1h"): 3.0,
        ("medium", "1d"): 40.0,
        ("large", "1h"): 10.0,
        ("large", "1d"): 120.0,
    }
    found = {}
    for item in rules:
        assert metric_names(item["expr"]) <= exported, item["expr"]
        if "tier" in item["labels"]:
            window = "1h" if "[1h]" in item["expr"] else "1d"
            found[item["labels"]["tier"], window] = float(item["expr"].split(" > ")[1])
            assert f'tier="{item["labels"]["tier"]}"' in item["expr"]
    assert found == expected


def test_service_monitors_scrape_the_router_and_triton(large_run: ProgramRun) -> None:
    router = named(
        large_run, "kubernetes:monitoring.coreos.com/v1:ServiceMonitor", "router"
    )
    service = named(large_run, "kubernetes:core/v1:Service", "llm-router")

    selector = router.inputs["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service.inputs["metadata"]["labels"].items()
    assert router.inputs["spec"]["endpoints"][0]["port"] == "http"
    assert router.inputs["spec"]["namespaceSelector"] == {"matchNames": ["llm-router"]}
    named(large_run, "kubernetes:monitoring.coreos.com/v1:ServiceMonitor", "triton")
    values = chart(large_run, "kube-prometheus-stack").inputs["values"]
    spec = values["prometheus"]["prometheusSpec"]
    assert spec["serviceMonitorSelectorNilUsesHelmValues"] is False


def test_fluent_bit_ships_the_routers_emf_lines_unchanged(
    large_run: ProgramRun,
) -> None:
    values = chart(large_run, "fluent-bit").inputs["values"]
    config = values["config"]
    group = named(
        large_run, "aws:cloudwatch/logGroup:LogGroup", "llmr-large-obs-router-logs"
    )

    assert (
        "/var/log/containers/llm-router-*_llm-router_router-*.log" in config["inputs"]
    )
    assert "log_format json/emf" in config["outputs"]
    assert "log_key log" in config["outputs"]
    assert "log_group_name /llm-router/large/router" in config["outputs"]
    assert group.inputs["retentionInDays"] == 30
    assert values["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"]


def test_the_same_cloudwatch_cost_alarms_as_the_other_stacks(
    large_run: ProgramRun,
) -> None:
    alarms = {
        a.name: a for a in large_run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    }

    for tier in TIERS:
        hourly = alarms[f"llmr-large-cost-{tier}-cost-hourly"]
        metric = hourly.inputs["metricQueries"][0]["metric"]
        assert metric["metricName"] == "CostUSD"
        assert metric["namespace"] == "LLMRouter"
        assert metric["dimensions"] == {"Tier": tier}
        assert f"llmr-large-cost-{tier}-cost-daily" in alarms
        assert f"llmr-large-cost-{tier}-tokens-hourly" in alarms
    assert alarms["llmr-large-cost-large-cost-hourly"].inputs["threshold"] == 10.0


def test_each_gpu_tier_has_a_monthly_budget_on_its_node_tags(
    large_run: ProgramRun,
) -> None:
    budgets = {b.name: b.inputs for b in large_run.of_type("aws:budgets/budget:Budget")}
    topic = large_run.one("aws:sns/topic:Topic").outputs["arn"]
    classes = large_run.of_type("kubernetes:karpenter.k8s.aws/v1:EC2NodeClass")

    for tier, usd in (("small", "800.00"), ("medium", "800.00"), ("large", "3000.00")):
        budget = budgets[f"llmr-large-obs-{tier}-gpu-budget"]
        filters = {
            f["tags"]["key"]: f["tags"]["values"]
            for f in budget["filterExpression"]["ands"]
        }
        assert budget["limitAmount"] == usd
        assert filters == {"Tier": [tier], "Stack": ["large"]}
        assert all(
            n["subscriberSnsTopicArns"] == [topic] for n in budget["notifications"]
        )
        [node_class] = [
            c for c in classes if c.inputs["metadata"]["name"] == f"gpu-{tier}"
        ]
        node_tags = node_class.inputs["spec"]["tags"]
        assert (node_tags["Tier"], node_tags["Stack"]) == (tier, "large")
