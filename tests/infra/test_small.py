"""The small stack: Lambda from the image, Function URL, DynamoDB decision cache."""

from __future__ import annotations

import json
from pathlib import Path

from infra_support import FIXTURE_POLICY, as_list, lambda_environment

from infra.mocking import ProgramRun, run_program
from infra.small import LAMBDA_ENV_LIMIT_BYTES
from llm_router.cache.dynamodb import HASH_KEY, TTL_ATTRIBUTE

FUNCTION = "aws:lambda/function:Function"
ROOT = Path(__file__).resolve().parents[2]


def test_the_function_runs_the_pushed_image_on_arm64(small_run: ProgramRun) -> None:
    function = small_run.one(FUNCTION).inputs
    image = small_run.one("docker-build:index:Image").inputs

    assert function["packageType"] == "Image"
    assert function["architectures"] == ["arm64"]
    assert function["imageUri"] == small_run.outputs["imageRef"]
    assert "@sha256:" in function["imageUri"], "the function must pin a digest"
    assert image["platforms"] == ["linux/arm64"]
    assert image["push"] is True
    assert image["dockerfile"]["location"].endswith("services/router/Dockerfile")


def test_the_web_adapter_streams_responses_from_the_router_port(
    small_run: ProgramRun,
) -> None:
    environment = lambda_environment(small_run)
    url = small_run.one("aws:lambda/functionUrl:FunctionUrl").inputs

    assert environment["AWS_LWA_INVOKE_MODE"] == "response_stream"
    assert environment["AWS_LWA_PORT"] == "8080"
    assert environment["AWS_LWA_READINESS_CHECK_PATH"] == "/healthz"
    assert url["invokeMode"] == "RESPONSE_STREAM"
    assert url["authorizationType"] == "AWS_IAM"


def test_the_router_is_told_its_cache_metrics_and_key_secret(
    small_run: ProgramRun,
) -> None:
    environment = lambda_environment(small_run)
    table = small_run.one("aws:dynamodb/table:Table")

    assert environment["LLM_ROUTER_CACHE_BACKEND"] == "dynamodb"
    assert environment["LLM_ROUTER_DYNAMODB_TABLE"] == table.outputs["name"]
    assert environment["LLM_ROUTER_DYNAMODB_REGION"] == "us-east-1"
    assert environment["LLM_ROUTER_EMF_ENABLED"] == "true"
    assert environment["LLM_ROUTER_EMF_NAMESPACE"] == "LLMRouter"
    assert (
        environment["LLM_ROUTER_API_KEYS_SECRET_ARN"]
        == (small_run.outputs["apiKeysSecretArn"])
    )
    assert "LLM_ROUTER_API_KEYS" not in environment, "keys must not be plain env"
    targets = json.loads(environment["LLM_ROUTER_TIER_TARGETS"])
    assert targets == small_run.outputs["tierProfiles"]


def test_the_decision_table_matches_the_routers_cache_layout(
    small_run: ProgramRun,
) -> None:
    table = small_run.one("aws:dynamodb/table:Table").inputs

    assert table["hashKey"] == HASH_KEY
    assert table["attributes"] == [{"name": HASH_KEY, "type": "S"}]
    assert table["ttl"] == {"attributeName": TTL_ATTRIBUTE, "enabled": True}
    assert table["pointInTimeRecovery"] == {"enabled": True}
    assert table["serverSideEncryption"] == {"enabled": True}
    assert table["billingMode"] == "PAY_PER_REQUEST"


def test_reserved_concurrency_and_memory_come_from_config() -> None:
    run = run_program("small", {"lambdaReservedConcurrency": 3, "lambdaMemoryMb": 2048})
    function = run.one(FUNCTION).inputs

    assert function["reservedConcurrentExecutions"] == 3
    assert function["memorySize"] == 2048


def test_logs_go_to_a_group_with_retention(small_run: ProgramRun) -> None:
    group = small_run.one("aws:cloudwatch/logGroup:LogGroup").inputs
    function = small_run.one(FUNCTION).inputs

    assert group["retentionInDays"] == 30
    assert function["loggingConfig"]["logGroup"] == group["name"]


def test_the_environment_fits_lambdas_four_kilobytes(small_run: ProgramRun) -> None:
    environment = lambda_environment(small_run)

    size = sum(len(k.encode()) + len(v.encode()) for k, v in environment.items())
    assert size < LAMBDA_ENV_LIMIT_BYTES, f"{size} bytes of environment"


def test_callers_get_a_policy_for_this_function_url_only(small_run: ProgramRun) -> None:
    caller = json.loads(small_run.one("aws:iam/policy:Policy").inputs["policy"])
    function_arn = small_run.one(FUNCTION).outputs["arn"]

    statements = {s["Sid"]: s for s in caller["Statement"]}
    assert as_list(statements["InvokeRouterUrl"]["Action"]) == [
        "lambda:InvokeFunctionUrl"
    ]
    assert statements["InvokeRouterUrl"]["Condition"] == {
        "StringEquals": {"lambda:FunctionUrlAuthType": "AWS_IAM"}
    }
    for statement in caller["Statement"]:
        assert as_list(statement["Resource"]) == [function_arn]


def test_lambda_may_pull_the_image_and_only_pull(small_run: ProgramRun) -> None:
    policy = small_run.one("aws:ecr/repositoryPolicy:RepositoryPolicy").inputs
    statement = json.loads(policy["policy"])["Statement"][0]

    assert statement["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert statement["Action"] == ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    assert statement["Condition"]["StringLike"]["aws:sourceArn"] == (
        "arn:aws:lambda:us-east-1:123456789012:function:*"
    )
    assert (
        policy["repository"]
        == small_run.one("aws:ecr/repository:Repository").outputs["name"]
    )


def test_daily_tier_budgets_get_a_shared_spend_table(tmp_path: Path) -> None:
    text = (ROOT / FIXTURE_POLICY).read_text(encoding="utf-8")
    budgeted = tmp_path / "budgeted.yaml"
    budgeted.write_text(
        text.replace(
            "    output_usd_per_million: 0.14\n",
            "    output_usd_per_million: 0.14\n    daily_budget_usd: 5\n",
        ),
        encoding="utf-8",
    )

    run = run_program("small", {"policyFile": str(budgeted)})
    tables = {t.name: t for t in run.of_type("aws:dynamodb/table:Table")}
    environment = lambda_environment(run)
    runtime = json.loads(
        next(
            p.inputs["policy"]
            for p in run.of_type("aws:iam/rolePolicy:RolePolicy")
            if p.name.endswith("-runtime")
        )
    )

    spend = tables["llmr-small-budgets"]
    assert spend.inputs["hashKey"] == "pk"
    assert spend.inputs["ttl"] == {"attributeName": "expires_at", "enabled": True}
    assert environment["LLM_ROUTER_BUDGETS_BACKEND"] == "dynamodb"
    assert environment["LLM_ROUTER_BUDGETS_DYNAMODB_TABLE"] == spend.outputs["name"]
    grants = {s["Sid"]: s for s in runtime["Statement"]}
    assert grants["CountTierSpend"]["Resource"] == [spend.outputs["arn"]]
    assert grants["CountTierSpend"]["Action"] == [
        "dynamodb:BatchGetItem",
        "dynamodb:UpdateItem",
    ]


def test_no_spend_table_without_daily_budgets(small_run: ProgramRun) -> None:
    assert [t.name for t in small_run.of_type("aws:dynamodb/table:Table")] == [
        "llmr-small-decisions"
    ]
    assert "LLM_ROUTER_BUDGETS_BACKEND" not in lambda_environment(small_run)
