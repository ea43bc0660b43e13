"""The small stack: the router on Lambda, reached through an IAM-authenticated URL.

At ~100 requests a day an always-on server would idle: Lambda bills per
request. The image runs under the AWS Lambda Web Adapter in response-stream
mode, so streamed completions reach the client token by token.

Why a Function URL with AWS_IAM auth rather than an API Gateway HTTP API:
HTTP APIs have no API keys (only REST APIs do), cap integrations at 30 s and
do not stream responses; a Function URL streams, allows up to 15 minutes and
costs nothing extra. Callers sign with SigV4 (the `invokePolicyArn` output
grants that) and send the router's own API key in `x-api-key`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.components.cost_alarms import CostAlarms, CostAlarmsArgs
from infra.components.router_image import RouterImage, RouterImageArgs
from infra.components.router_wiring import (
    HEALTH_PATH,
    ROUTER_PORT,
    RouterWiring,
    RouterWiringArgs,
)
from infra.config import KitConfig
from infra.iam import assume_role_policy, policy_document, statement
from llm_router.cache.dynamodb import HASH_KEY, TTL_ATTRIBUTE

# What the router's DynamoDB cache reads and writes (conditional puts).
CACHE_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem")
# The spend store of daily tier budgets (llm_router.reliability.budgets):
# items `pk = budget#<tier>#<day>`, read in batches, bumped with ADD.
BUDGET_KEY = "pk"
BUDGET_ACTIONS = ("dynamodb:BatchGetItem", "dynamodb:UpdateItem")


@dataclass(frozen=True)
class SmallStackArgs:
    """The validated stack config."""

    config: KitConfig


class SmallStack(pulumi.ComponentResource):
    """Lambda + Function URL + DynamoDB decision cache + cost alarms."""

    outputs: dict[str, pulumi.Input[object]]

    def __init__(
        self,
        name: str,
        args: SmallStackArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("llmrouter:index:SmallStack", name, None, opts)
        self._name = name
        self._config = args.config
        self._tags: Mapping[str, str] = dict(args.config.tags)
        self._child = pulumi.ResourceOptions(parent=self)
        config = args.config

        self._wiring = RouterWiring(
            f"{name}-router", RouterWiringArgs.for_stack(config), opts=self._child
        )
        self._image = RouterImage(
            f"{name}-image", RouterImageArgs.for_stack(config), opts=self._child
        )
        self._table = self._declare_table("decisions", HASH_KEY)
        # Lambda instances share nothing in memory: when the policy sets daily
        # tier budgets, their spend must live in a table all instances see.
        self._budget_table = (
            self._declare_table("budgets", BUDGET_KEY)
            if any(t.daily_budget_usd for t in config.policy.policy.tiers.values())
            else None
        )
        self._log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/llm-router/{config.stack}/router",
            retention_in_days=config.log_retention_days,
            tags=dict(self._tags),
            opts=self._child,
        )
        role = self._declare_role()
        pull = self._allow_lambda_pull()
        function = self._declare_function(role, pull)
        url = aws.lambda_.FunctionUrl(
            f"{name}-url",
            function_name=function.name,
            authorization_type="AWS_IAM",
            invoke_mode="RESPONSE_STREAM",
            opts=self._child,
        )
        invoke = self._declare_caller_policy(function)
        alarms = CostAlarms(
            f"{name}-cost",
            CostAlarmsArgs.for_stack(config, self._wiring.profiles.profile_arns),
            opts=self._child,
        )

        self.outputs = {
            "url": url.function_url,
            "invokePolicyArn": invoke.arn,
            "functionName": function.name,
            "decisionTable": self._table.name,
            "imageRef": self._image.image_ref,
            "tierProfiles": self._wiring.profiles.profile_arns,
            "apiKeysSecretArn": self._wiring.api_keys_secret.arn,
            "apiKey": self._wiring.generated_api_key,
            "alarmTopicArn": alarms.topic.arn,
            "dashboardName": alarms.dashboard.dashboard_name,
        }
        self.register_outputs(self.outputs)

    def _declare_table(self, role: str, key: str) -> aws.dynamodb.Table:
        return aws.dynamodb.Table(
            f"{self._name}-{role}",
            billing_mode="PAY_PER_REQUEST",
            hash_key=key,
            attributes=[{"name": key, "type": "S"}],
            ttl={"attribute_name": TTL_ATTRIBUTE, "enabled": True},
            point_in_time_recovery={"enabled": True},
            server_side_encryption={"enabled": True},
            tags=dict(self._tags),
            opts=self._child,
        )

    def _declare_role(self) -> aws.iam.Role:
        role = aws.iam.Role(
            f"{self._name}-role",
            description="The llm-router Lambda function.",
            assume_role_policy=assume_role_policy("lambda.amazonaws.com"),
            tags=dict(self._tags),
            opts=self._child,
        )
        statements = [
            statement(
                "WriteLogs",
                ["logs:CreateLogStream", "logs:PutLogEvents"],
                [pulumi.Output.concat(self._log_group.arn, ":*")],
            ),
            statement("UseDecisionCache", CACHE_ACTIONS, [self._table.arn]),
            statement(
                "ReadApiKeys",
                ["secretsmanager:GetSecretValue"],
                [self._wiring.api_keys_secret.arn],
            ),
        ]
        if self._budget_table is not None:
            statements.append(
                statement("CountTierSpend", BUDGET_ACTIONS, [self._budget_table.arn])
            )
        aws.iam.RolePolicy(
            f"{self._name}-runtime",
            role=role.id,
            policy=policy_document(statements),
            opts=self._child,
        )
        if self._wiring.invoke_policy is not None:
            aws.iam.RolePolicy(
                f"{self._name}-bedrock",
                role=role.id,
                policy=self._wiring.invoke_policy,
                opts=self._child,
            )
        return role

    def _allow_lambda_pull(self) -> aws.ecr.RepositoryPolicy:
        # Lambda pulls the image as its service principal; without this
        # statement it tries to add one itself, which needs extra rights.
        account = aws.get_caller_identity_output(
            opts=pulumi.InvokeOutputOptions(parent=self)
        ).account_id
        functions = account.apply(
            lambda acct: f"arn:aws:lambda:{self._config.region}:{acct}:function:*"
        )
        return aws.ecr.RepositoryPolicy(
            f"{self._name}-lambda-pull",
            repository=self._image.repository.name,
            policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "LambdaPullsRouterImage",
                            "Effect": "Allow",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                            "Action": [
                                "ecr:BatchGetImage",
                                "ecr:GetDownloadUrlForLayer",
                            ],
                            "Condition": {"StringLike": {"aws:sourceArn": functions}},
                        }
                    ],
                }
            ),
            opts=self._child,
        )

    def _declare_function(
        self, role: aws.iam.Role, pull: aws.ecr.RepositoryPolicy
    ) -> aws.lambda_.Function:
        config = self._config
        environment: dict[str, pulumi.Input[str]] = {
            **self._wiring.environment,
            "LLM_ROUTER_CACHE_BACKEND": "dynamodb",
            "LLM_ROUTER_DYNAMODB_TABLE": self._table.name,
            "LLM_ROUTER_DYNAMODB_REGION": config.region,
            "LLM_ROUTER_API_KEYS_SECRET_ARN": self._wiring.api_keys_secret.arn,
            **self._budget_environment(),
            "AWS_LWA_INVOKE_MODE": "response_stream",
            "AWS_LWA_PORT": str(ROUTER_PORT),
            "AWS_LWA_READINESS_CHECK_PATH": HEALTH_PATH,
        }
        return aws.lambda_.Function(
            f"{self._name}-router",
            package_type="Image",
            image_uri=self._image.image_ref,
            architectures=["arm64"],
            role=role.arn,
            memory_size=config.small.memory_mb,
            timeout=config.small.timeout_s,
            reserved_concurrent_executions=config.small.reserved_concurrency,
            environment={"variables": environment},
            logging_config={"log_format": "Text", "log_group": self._log_group.name},
            tags=dict(self._tags),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role, pull]),
        )

    def _budget_environment(self) -> dict[str, pulumi.Input[str]]:
        if self._budget_table is None:
            return {}
        return {
            "LLM_ROUTER_BUDGETS_BACKEND": "dynamodb",
            "LLM_ROUTER_BUDGETS_DYNAMODB_TABLE": self._budget_table.name,
        }

    def _declare_caller_policy(self, function: aws.lambda_.Function) -> aws.iam.Policy:
        # Since October 2025 a function URL needs both actions from its callers.
        return aws.iam.Policy(
            f"{self._name}-invoke",
            description="Attach to the principals allowed to call the router URL.",
            policy=policy_document(
                [
                    statement(
                        "InvokeRouterUrl",
                        ["lambda:InvokeFunctionUrl"],
                        [function.arn],
                        {"StringEquals": {"lambda:FunctionUrlAuthType": "AWS_IAM"}},
                    ),
                    statement(
                        "InvokeRouter", ["lambda:InvokeFunction"], [function.arn]
                    ),
                ]
            ),
            tags=dict(self._tags),
            opts=self._child,
        )
