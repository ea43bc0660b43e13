"""The kit's guardrails as pure functions: (resource type, properties) -> violations.

The CrossGuard pack (`__main__.py`) runs them on every resource during a real
`pulumi preview`, including the children of remote components (awsx) that the
mocks cannot see; the tests run them on each stack under mocks and on
hand-written bad resources. Properties use the engine's camelCase names.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from fnmatch import fnmatchcase
from typing import Any, Final

REQUIRED_TAGS: Final = ("Project", "Stack", "ManagedBy", "CostCenter")
BEDROCK_INVOKE_ACTIONS: Final = (
    "bedrock:InvokeModel",
    "bedrock:InvokeModelWithResponseStream",
)
POLICY_TYPES: Final = frozenset(
    {
        "aws:iam/policy:Policy",
        "aws:iam/rolePolicy:RolePolicy",
        "aws:iam/userPolicy:UserPolicy",
        "aws:iam/groupPolicy:GroupPolicy",
    }
)
# AWS types this kit declares that accept tags; tests keep the list complete.
TAGGABLE_TYPES: Final = frozenset(
    {
        "aws:appautoscaling/target:Target",
        "aws:bedrock/inferenceProfile:InferenceProfile",
        "aws:budgets/budget:Budget",
        "aws:cloudwatch/logGroup:LogGroup",
        "aws:cloudwatch/metricAlarm:MetricAlarm",
        "aws:costexplorer/anomalyMonitor:AnomalyMonitor",
        "aws:costexplorer/anomalySubscription:AnomalySubscription",
        "aws:dynamodb/table:Table",
        "aws:ec2/securityGroup:SecurityGroup",
        "aws:ec2/vpcEndpoint:VpcEndpoint",
        "aws:ecr/repository:Repository",
        "aws:ecs/cluster:Cluster",
        "aws:ecs/service:Service",
        "aws:ecs/taskDefinition:TaskDefinition",
        "aws:elasticache/replicationGroup:ReplicationGroup",
        "aws:elasticache/subnetGroup:SubnetGroup",
        "aws:iam/policy:Policy",
        "aws:iam/role:Role",
        "aws:kms/key:Key",
        "aws:lambda/function:Function",
        "aws:lb/listener:Listener",
        "aws:lb/loadBalancer:LoadBalancer",
        "aws:lb/targetGroup:TargetGroup",
        "aws:secretsmanager/secret:Secret",
        "aws:sns/topic:Topic",
        "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
        "awsx:ec2:Vpc",
        # Children of awsx.ec2.Vpc, seen only in a real preview.
        "aws:ec2/vpc:Vpc",
        "aws:ec2/subnet:Subnet",
        "aws:ec2/natGateway:NatGateway",
        "aws:ec2/eip:Eip",
        "aws:ec2/internetGateway:InternetGateway",
        "aws:ec2/routeTable:RouteTable",
        # The large stack.
        "aws:cloudwatch/eventRule:EventRule",
        "aws:efs/fileSystem:FileSystem",
        "aws:eks/accessEntry:AccessEntry",
        "aws:eks/addon:Addon",
        "aws:eks/podIdentityAssociation:PodIdentityAssociation",
        "aws:s3/bucket:Bucket",
        "aws:s3/bucketObjectv2:BucketObjectv2",
        "aws:sqs/queue:Queue",
    }
)

Props = Mapping[str, Any]
Rule = Callable[[str, Props], list[str]]


def check_no_wildcard_actions(resource_type: str, props: Props) -> list[str]:
    """IAM policies name their actions: no `*` and no `service:*`."""
    violations = []
    for statement in _allow_statements(resource_type, props):
        for action in _as_list(statement.get("Action")):
            if action == "*" or action.endswith(":*"):
                violations.append(
                    f"Statement {statement.get('Sid', '?')!r} allows {action!r}; "
                    "list the actions the role needs instead."
                )
    return violations


def check_bedrock_invoke_scope(resource_type: str, props: Props) -> list[str]:
    """Bedrock invoke only on named profiles, and on models only through them."""
    violations = []
    for statement in _allow_statements(resource_type, props):
        actions = _as_list(statement.get("Action"))
        if not any(
            fnmatchcase(target.lower(), action.lower())
            for action in actions
            for target in BEDROCK_INVOKE_ACTIONS
        ):
            continue
        sid = statement.get("Sid", "?")
        wildcards = [a for a in actions if "*" in a]
        if wildcards:
            violations.append(
                f"Statement {sid!r} grants Bedrock invoke through wildcard actions "
                f"{wildcards}; name bedrock:InvokeModel and "
                "bedrock:InvokeModelWithResponseStream."
            )
        condition = json.dumps(statement.get("Condition", {}))
        through_profile = "bedrock:InferenceProfileArn" in condition
        for resource in _as_list(statement.get("Resource")):
            if resource == "*" or resource.endswith(("/*", ":*")):
                violations.append(
                    f"Statement {sid!r} allows Bedrock invoke on {resource!r}; "
                    "allow the tier inference profiles by ARN."
                )
            elif (
                ":foundation-model/" in resource or ":inference-profile/" in resource
            ) and not through_profile:
                violations.append(
                    f"Statement {sid!r} allows {resource!r} directly; add a "
                    "bedrock:InferenceProfileArn condition so models are reached "
                    "only through the tier profiles."
                )
    return violations


def check_encryption(resource_type: str, props: Props) -> list[str]:
    """Data stores encrypt at rest, and traffic is encrypted in transit."""
    if resource_type == "aws:dynamodb/table:Table":
        if not (props.get("serverSideEncryption") or {}).get("enabled"):
            return ["DynamoDB table without serverSideEncryption.enabled = true."]
    elif resource_type == "aws:elasticache/replicationGroup:ReplicationGroup":
        missing = [
            key
            for key in ("atRestEncryptionEnabled", "transitEncryptionEnabled")
            if props.get(key) is not True
        ]
        if missing:
            return [f"ElastiCache replication group without {', '.join(missing)}."]
    elif resource_type == "aws:sns/topic:Topic":
        if not props.get("kmsMasterKeyId"):
            return ["SNS topic without kmsMasterKeyId (encryption at rest)."]
    elif resource_type == "aws:lb/listener:Listener":
        return _check_listener(props)
    return []


def check_required_tags(resource_type: str, props: Props) -> list[str]:
    """Every taggable resource carries the kit tags; cost allocation relies on them."""
    if resource_type not in TAGGABLE_TYPES:
        return []
    tags = {**(props.get("tagsAll") or {}), **(props.get("tags") or {})}
    missing = [key for key in REQUIRED_TAGS if not tags.get(key)]
    if missing:
        return [f"{resource_type} lacks tags {missing}; the kit tags every resource."]
    return []


def check_log_retention(resource_type: str, props: Props) -> list[str]:
    """Log groups expire their data; never-expiring logs grow the bill forever."""
    if resource_type != "aws:cloudwatch/logGroup:LogGroup":
        return []
    if not props.get("retentionInDays"):
        return ["Log group without retentionInDays; set a retention period."]
    return []


def check_no_public_task_ip(resource_type: str, props: Props) -> list[str]:
    """Fargate tasks stay private: only the load balancer faces the internet."""
    if resource_type != "aws:ecs/service:Service":
        return []
    network = props.get("networkConfiguration") or {}
    if network.get("assignPublicIp"):
        return ["ECS service assigns public IPs to its tasks; keep them private."]
    return []


RULES: Final[dict[str, tuple[Rule, str]]] = {
    "no-wildcard-iam-actions": (
        check_no_wildcard_actions,
        "IAM policies list their actions; no '*' or 'service:*'.",
    ),
    "no-wildcard-bedrock-invoke": (
        check_bedrock_invoke_scope,
        "Bedrock is invoked only through the tier inference profiles.",
    ),
    "encryption": (
        check_encryption,
        "Caches, tables and topics encrypt at rest; listeners use HTTPS.",
    ),
    "required-tags": (check_required_tags, "Every taggable resource has the kit tags."),
    "log-retention": (check_log_retention, "Every log group has a retention period."),
    "no-public-task-ip": (check_no_public_task_ip, "Tasks get no public IP."),
}


def check_all(resource_type: str, props: Props) -> dict[str, list[str]]:
    """Every rule's violations for one resource (rules without any are omitted)."""
    found = {}
    for name, (rule, _) in RULES.items():
        violations = rule(resource_type, props)
        if violations:
            found[name] = violations
    return found


def _check_listener(props: Props) -> list[str]:
    if props.get("protocol") == "HTTPS":
        return []
    actions = props.get("defaultActions") or []
    redirects = all(
        a.get("type") == "redirect"
        and (a.get("redirect") or {}).get("protocol") == "HTTPS"
        for a in actions
    )
    if actions and redirects:
        return []
    return [
        f"Listener on port {props.get('port')} speaks {props.get('protocol')!r} "
        "without redirecting to HTTPS."
    ]


def _allow_statements(resource_type: str, props: Props) -> list[dict[str, Any]]:
    if resource_type not in POLICY_TYPES:
        return []
    document = props.get("policy")
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except json.JSONDecodeError:
            return []
    if not isinstance(document, dict):
        return []
    statements = document.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    return [s for s in statements if s.get("Effect") == "Allow"]


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(item) for item in value]
