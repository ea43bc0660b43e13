"""The offline plan works for the large stack, with no cloud and no NGC key."""

from __future__ import annotations

import io

from infra.plan import main


def test_the_large_plan_lists_pools_alarms_budgets_and_the_router_environment() -> None:
    out = io.StringIO()

    status = main(["large"], out=out)

    text = out.getvalue()
    assert status == 0, text
    assert "7  kubernetes:karpenter.sh/v1:NodePool" in text
    assert "3  kubernetes:apps.nvidia.com/v1alpha1:NIMService" in text
    assert "llmr-large-cost-large-cost-hourly: FILL(cost, 0) > 10" in text
    assert (
        "llmr-large-obs-large-gpu-budget: 3000.00 USD per month "
        "(Tier=large, Stack=large)" in text
    )
    assert "LLM_ROUTER_CLASSIFIER=triton" in text
    assert "LLM_ROUTER_REDIS_AUTH_TOKEN <- secret llm-router-redis/auth-token" in text
    assert "no violations" in text
    for secret in ("apiKey", "grafanaAdminPassword", "kubeconfig"):
        assert f"{secret}: [secret]" in text
    assert "mock-ngc-api-key" not in text
