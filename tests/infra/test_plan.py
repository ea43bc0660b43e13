"""The offline plan reviewers run: `python -m infra.plan <stack>`."""

from __future__ import annotations

import io
from pathlib import Path

from infra_support import BAD_POLICY

from infra.plan import main

ROOT = Path(__file__).resolve().parents[2]


def run_plan(*argv: str) -> tuple[int, str]:
    """Run the plan command; its exit status and what it printed."""
    out = io.StringIO()
    status = main(list(argv), out=out)
    return status, out.getvalue()


def test_the_small_plan_lists_resources_alarms_and_environment() -> None:
    status, text = run_plan("small")

    assert status == 0, text
    assert "1  aws:lambda/function:Function" in text
    assert "3  aws:bedrock/inferenceProfile:InferenceProfile" in text
    assert (
        "llmr-small-cost-large-cost-hourly: FILL(cost, 0) > 1  [CostUSD/3600s]" in text
    )
    assert (
        "llmr-small-cost-large-cost-daily: FILL(cost, 0) > 5  [CostUSD/86400s]" in text
    )
    assert (
        "llmr-small-cost-large-budget: 60.00 USD per month (Tier=large, Stack=small)"
        in text
    )
    assert "AWS_LWA_INVOKE_MODE=response_stream" in text
    policy = ROOT / "services/router/config/bedrock.yaml"
    assert f"LLM_ROUTER_POLICY=<{len(policy.read_bytes())} bytes>" in text
    assert "no violations" in text
    assert "apiKey: [secret]" in text


def test_the_medium_plan_shows_secrets_by_reference_and_overrides_apply() -> None:
    status, text = run_plan("medium", "--set", 'hourlyCostAlarmUsd=["*=2.5"]')

    assert status == 0, text
    assert "1  aws:elasticache/replicationGroup:ReplicationGroup" in text
    assert "llmr-medium-cost-small-cost-hourly: FILL(cost, 0) > 2.5" in text
    assert "LLM_ROUTER_REDIS_AUTH_TOKEN <- secret arn:aws:secretsmanager:" in text


def test_a_bad_policy_or_override_exits_with_the_message() -> None:
    status, text = run_plan("small", "--set", f"policyFile={BAD_POLICY}")

    assert status == 2
    assert "Unknown provider 'bedrok'" in text

    status, text = run_plan("small", "--set", "nonsense")
    assert status == 2
    assert "--set expects KEY=VALUE, got 'nonsense'" in text
