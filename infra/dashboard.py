"""The CloudWatch dashboard body: per-tier panels over the router's EMF metrics."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from infra import metrics

# (title, metric names, statistic, period in seconds)
_PANELS: tuple[tuple[str, tuple[str, ...], str, int], ...] = (
    ("Requests per tier", (metrics.REQUESTS,), "Sum", 300),
    ("Tokens per tier", (metrics.INPUT_TOKENS, metrics.OUTPUT_TOKENS), "Sum", 300),
    ("Cost per tier (USD per hour)", (metrics.COST_USD,), "Sum", 3600),
    ("Decision latency p95 (ms)", (metrics.DECISION_LATENCY_MS,), "p95", 300),
    ("Fallbacks per tier", (metrics.FALLBACKS,), "Sum", 300),
    ("Decision-cache hits per tier", (metrics.CACHE_HITS,), "Sum", 300),
    ("Errors per tier", (metrics.ERRORS,), "Sum", 300),
    ("Upstream latency p95 (ms)", (metrics.UPSTREAM_LATENCY_MS,), "p95", 300),
)
_WIDTH = 12
_HEIGHT = 6


def build_dashboard_body(namespace: str, tiers: Sequence[str], region: str) -> str:
    """The dashboard JSON: one time-series panel per concern, one line per tier."""
    widgets = [
        _panel(index, title, names, stat, period, namespace, tiers, region)
        for index, (title, names, stat, period) in enumerate(_PANELS)
    ]
    return json.dumps({"widgets": widgets}, sort_keys=True)


def _panel(
    index: int,
    title: str,
    names: tuple[str, ...],
    stat: str,
    period: int,
    namespace: str,
    tiers: Sequence[str],
    region: str,
) -> dict[str, Any]:
    lines = [
        [namespace, name, metrics.TIER_DIMENSION, tier, {"label": f"{tier} {name}"}]
        for tier in tiers
        for name in names
    ]
    return {
        "type": "metric",
        "x": (index % 2) * _WIDTH,
        "y": (index // 2) * _HEIGHT,
        "width": _WIDTH,
        "height": _HEIGHT,
        "properties": {
            "title": title,
            "region": region,
            "view": "timeSeries",
            "stat": stat,
            "period": period,
            "metrics": lines,
        },
    }
