"""The medium stack's router service: Fargate tasks behind an HTTPS ALB.

Tasks run in private subnets with no public IP; the ALB is the only way in.
HTTP on port 80 only redirects to HTTPS. The service scales on CPU and on
requests per task. Secrets (API keys, Redis AUTH token) reach the container
through ECS `secrets`, so they never appear in the task definition.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.components.router_wiring import READY_PATH, ROUTER_PORT
from infra.config import MediumConfig
from infra.iam import assume_role_policy, policy_document, statement
from infra.medium.network import HTTP_PORT, HTTPS_PORT

CONTAINER = "router"
# TLS 1.3 with 1.2 fallback: the current recommended ALB policy.
SSL_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
# Streamed completions can run for minutes; the ALB must not cut them.
IDLE_TIMEOUT_S = 300
ECR_PULL_ACTIONS = (
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
)


@dataclass(frozen=True)
class RouterServiceArgs:
    """Everything the service needs from the network, cache and wiring."""

    sizing: MediumConfig
    image_ref: pulumi.Input[str]
    repository_arn: pulumi.Input[str]
    environment: Mapping[str, pulumi.Input[str]]
    secrets: Mapping[str, pulumi.Input[str]]
    invoke_policy: pulumi.Output[str] | None
    vpc_id: pulumi.Input[str]
    public_subnet_ids: pulumi.Input[Sequence[str]]
    private_subnet_ids: pulumi.Input[Sequence[str]]
    alb_group_id: pulumi.Input[str]
    task_group_id: pulumi.Input[str]
    region: str
    log_group_name: str
    log_retention_days: int
    tags: Mapping[str, str]


class RouterService(pulumi.ComponentResource):
    """ALB, listeners, cluster, task definition, service and autoscaling."""

    load_balancer: aws.lb.LoadBalancer
    service: aws.ecs.Service

    def __init__(
        self,
        name: str,
        args: RouterServiceArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("llmrouter:index:RouterService", name, None, opts)
        self._name = name
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)

        self._log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=args.log_group_name,
            retention_in_days=args.log_retention_days,
            tags=dict(args.tags),
            opts=self._child,
        )
        self.load_balancer, target_group, https = self._declare_load_balancer()
        cluster = aws.ecs.Cluster(
            f"{name}-cluster",
            settings=[{"name": "containerInsights", "value": "enabled"}],
            tags=dict(args.tags),
            opts=self._child,
        )
        task = self._declare_task_definition()
        self.service = aws.ecs.Service(
            f"{name}-service",
            cluster=cluster.arn,
            task_definition=task.arn,
            desired_count=args.sizing.min_tasks,
            launch_type="FARGATE",
            network_configuration={
                "subnets": args.private_subnet_ids,
                "security_groups": [args.task_group_id],
                "assign_public_ip": False,
            },
            load_balancers=[
                {
                    "target_group_arn": target_group.arn,
                    "container_name": CONTAINER,
                    "container_port": ROUTER_PORT,
                }
            ],
            deployment_circuit_breaker={"enable": True, "rollback": True},
            propagate_tags="SERVICE",
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[https]),
        )
        self._declare_autoscaling(cluster, target_group)

        self.register_outputs({"dnsName": self.load_balancer.dns_name})

    def _declare_load_balancer(
        self,
    ) -> tuple[aws.lb.LoadBalancer, aws.lb.TargetGroup, aws.lb.Listener]:
        args = self._args
        balancer = aws.lb.LoadBalancer(
            f"{self._name}-alb",
            load_balancer_type="application",
            internal=False,
            subnets=args.public_subnet_ids,
            security_groups=[args.alb_group_id],
            idle_timeout=IDLE_TIMEOUT_S,
            drop_invalid_header_fields=True,
            tags=dict(args.tags),
            opts=self._child,
        )
        target_group = aws.lb.TargetGroup(
            f"{self._name}-tg",
            port=ROUTER_PORT,
            protocol="HTTP",
            target_type="ip",
            vpc_id=args.vpc_id,
            deregistration_delay=60,
            health_check={
                "path": READY_PATH,
                "matcher": "200",
                "interval": 15,
                "healthy_threshold": 2,
                "unhealthy_threshold": 3,
            },
            tags=dict(args.tags),
            opts=self._child,
        )
        https = aws.lb.Listener(
            f"{self._name}-https",
            load_balancer_arn=balancer.arn,
            port=HTTPS_PORT,
            protocol="HTTPS",
            ssl_policy=SSL_POLICY,
            certificate_arn=args.sizing.certificate_arn,
            default_actions=[{"type": "forward", "target_group_arn": target_group.arn}],
            tags=dict(args.tags),
            opts=self._child,
        )
        aws.lb.Listener(
            f"{self._name}-http",
            load_balancer_arn=balancer.arn,
            port=HTTP_PORT,
            protocol="HTTP",
            default_actions=[
                {
                    "type": "redirect",
                    "redirect": {
                        "protocol": "HTTPS",
                        "port": str(HTTPS_PORT),
                        "status_code": "HTTP_301",
                    },
                }
            ],
            tags=dict(args.tags),
            opts=self._child,
        )
        return balancer, target_group, https

    def _declare_task_definition(self) -> aws.ecs.TaskDefinition:
        args = self._args
        execution_role = self._declare_role(
            "execution",
            [
                # GetAuthorizationToken has no resource-level permissions.
                statement("LogInToEcr", ["ecr:GetAuthorizationToken"], ["*"]),
                statement("PullRouterImage", ECR_PULL_ACTIONS, [args.repository_arn]),
                statement(
                    "WriteLogs",
                    ["logs:CreateLogStream", "logs:PutLogEvents"],
                    [pulumi.Output.concat(self._log_group.arn, ":*")],
                ),
                statement(
                    "ReadSecrets",
                    ["secretsmanager:GetSecretValue"],
                    list(args.secrets.values()),
                ),
            ],
        )
        task_role = self._declare_role("task", [], bedrock=args.invoke_policy)
        container = pulumi.Output.all(
            image=args.image_ref,
            environment=dict(args.environment),
            secrets=dict(args.secrets),
            log_group=self._log_group.name,
        ).apply(lambda values: json.dumps([self._container_definition(values)]))
        return aws.ecs.TaskDefinition(
            f"{self._name}-task",
            family=f"{self._name}-router",
            requires_compatibilities=["FARGATE"],
            network_mode="awsvpc",
            cpu=str(args.sizing.task_cpu),
            memory=str(args.sizing.task_memory_mb),
            runtime_platform={
                "cpu_architecture": "ARM64",
                "operating_system_family": "LINUX",
            },
            execution_role_arn=execution_role.arn,
            task_role_arn=task_role.arn,
            container_definitions=container,
            tags=dict(args.tags),
            opts=self._child,
        )

    def _container_definition(self, values: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "name": CONTAINER,
            "image": values["image"],
            "essential": True,
            "portMappings": [{"containerPort": ROUTER_PORT, "protocol": "tcp"}],
            "environment": [
                {"name": key, "value": value}
                for key, value in sorted(values["environment"].items())
            ],
            "secrets": [
                {"name": key, "valueFrom": arn}
                for key, arn in sorted(values["secrets"].items())
            ],
            "logConfiguration": {
                "logDriver": "awslogs",
                "options": {
                    "awslogs-group": values["log_group"],
                    "awslogs-region": self._args.region,
                    "awslogs-stream-prefix": CONTAINER,
                },
            },
            # Drain open streams before the task stops (see shutdown_grace_s).
            "stopTimeout": 60,
        }

    def _declare_role(
        self,
        kind: str,
        statements: list[dict[str, Any]],
        *,
        bedrock: pulumi.Output[str] | None = None,
    ) -> aws.iam.Role:
        role = aws.iam.Role(
            f"{self._name}-{kind}-role",
            description=f"llm-router ECS {kind} role.",
            assume_role_policy=assume_role_policy("ecs-tasks.amazonaws.com"),
            tags=dict(self._args.tags),
            opts=self._child,
        )
        if statements:
            aws.iam.RolePolicy(
                f"{self._name}-{kind}",
                role=role.id,
                policy=policy_document(statements),
                opts=self._child,
            )
        if bedrock is not None:
            aws.iam.RolePolicy(
                f"{self._name}-{kind}-bedrock",
                role=role.id,
                policy=bedrock,
                opts=self._child,
            )
        return role

    def _declare_autoscaling(
        self, cluster: aws.ecs.Cluster, target_group: aws.lb.TargetGroup
    ) -> None:
        sizing = self._args.sizing
        target = aws.appautoscaling.Target(
            f"{self._name}-scaling",
            service_namespace="ecs",
            scalable_dimension="ecs:service:DesiredCount",
            resource_id=pulumi.Output.concat(
                "service/", cluster.name, "/", self.service.name
            ),
            min_capacity=sizing.min_tasks,
            max_capacity=sizing.max_tasks,
            tags=dict(self._args.tags),
            opts=self._child,
        )
        resource_label = pulumi.Output.concat(
            self.load_balancer.arn_suffix, "/", target_group.arn_suffix
        )
        for suffix, metric, value, label in (
            ("cpu", "ECSServiceAverageCPUUtilization", sizing.cpu_target_percent, None),
            (
                "requests",
                "ALBRequestCountPerTarget",
                sizing.requests_per_target_per_minute,
                resource_label,
            ),
        ):
            aws.appautoscaling.Policy(
                f"{self._name}-scale-{suffix}",
                policy_type="TargetTrackingScaling",
                service_namespace=target.service_namespace,
                scalable_dimension=target.scalable_dimension,
                resource_id=target.resource_id,
                target_tracking_scaling_policy_configuration={
                    "target_value": value,
                    "predefined_metric_specification": {
                        "predefined_metric_type": metric,
                        "resource_label": label,
                    },
                    "scale_in_cooldown": 300,
                    "scale_out_cooldown": 60,
                },
                opts=self._child,
            )
