"""The medium stack: Fargate behind an HTTPS ALB, Redis, a private network."""

from __future__ import annotations

from infra_support import by_name, container, container_environment, secret_value

from infra.mocking import ProgramRun

INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"


def group_ids(run: ProgramRun) -> dict[str, str]:
    """Security group ids by role (alb, tasks, redis, endpoints)."""
    return {
        group.name.rsplit("-", 1)[-1]: f"{group.name}-id"
        for group in run.of_type("aws:ec2/securityGroup:SecurityGroup")
    }


def test_the_vpc_has_public_and_private_subnets_in_two_zones(
    medium_run: ProgramRun,
) -> None:
    vpc = medium_run.one("awsx:ec2:Vpc").inputs

    assert vpc["cidrBlock"] == "10.20.0.0/16"
    assert vpc["numberOfAvailabilityZones"] == 2
    assert vpc["natGateways"] == {"strategy": "Single"}
    assert {spec["type"] for spec in vpc["subnetSpecs"]} == {"Public", "Private"}
    assert vpc["enableDnsHostnames"] is True


def test_https_listener_uses_the_configured_certificate(
    medium_run: ProgramRun,
) -> None:
    listeners = {
        r.inputs["port"]: r.inputs
        for r in medium_run.of_type("aws:lb/listener:Listener")
    }

    https = listeners[443]
    assert https["protocol"] == "HTTPS"
    assert https["certificateArn"].startswith("arn:aws:acm:us-east-1:")
    assert https["sslPolicy"].startswith("ELBSecurityPolicy-TLS13")
    assert https["defaultActions"][0]["type"] == "forward"


def test_plain_http_only_redirects_to_https(medium_run: ProgramRun) -> None:
    listeners = {
        r.inputs["port"]: r.inputs
        for r in medium_run.of_type("aws:lb/listener:Listener")
    }

    action = listeners[80]["defaultActions"][0]
    assert action["type"] == "redirect"
    assert action["redirect"]["protocol"] == "HTTPS"
    assert action["redirect"]["statusCode"] == "HTTP_301"


def test_tasks_run_in_private_subnets_without_public_ips(
    medium_run: ProgramRun,
) -> None:
    service = medium_run.one("aws:ecs/service:Service").inputs
    balancer = medium_run.one("aws:lb/loadBalancer:LoadBalancer").inputs

    network = service["networkConfiguration"]
    assert network["assignPublicIp"] is False
    assert network["subnets"] == ["subnet-private-a", "subnet-private-b"]
    assert network["securityGroups"] == [group_ids(medium_run)["tasks"]]
    assert balancer["subnets"] == ["subnet-public-a", "subnet-public-b"]
    assert service["launchType"] == "FARGATE"


def test_only_the_alb_reaches_tasks_and_only_tasks_reach_redis(
    medium_run: ProgramRun,
) -> None:
    groups = group_ids(medium_run)
    ingress = medium_run.of_type(INGRESS)

    admitted = {
        (rule.inputs["securityGroupId"], rule.inputs["fromPort"]): rule.inputs
        for rule in ingress
        if rule.inputs["securityGroupId"] in {groups["tasks"], groups["redis"]}
    }
    assert set(admitted) == {(groups["tasks"], 8080), (groups["redis"], 6379)}
    task_rule = admitted[groups["tasks"], 8080]
    assert task_rule["referencedSecurityGroupId"] == groups["alb"]
    assert "cidrIpv4" not in task_rule
    redis_rule = admitted[groups["redis"], 6379]
    assert redis_rule["referencedSecurityGroupId"] == groups["tasks"]
    assert "cidrIpv4" not in redis_rule
    public = [r.inputs for r in ingress if r.inputs.get("cidrIpv4")]
    assert {r["securityGroupId"] for r in public} == {groups["alb"]}
    assert {r["fromPort"] for r in public} == {80, 443}


def test_redis_encrypts_in_transit_and_at_rest_with_an_auth_token(
    medium_run: ProgramRun,
) -> None:
    group = medium_run.one("aws:elasticache/replicationGroup:ReplicationGroup").inputs
    token = by_name(medium_run.of_type("random:index/randomPassword:RandomPassword"))[
        "llmr-medium-cache-auth-token"
    ]

    assert group["engine"] == "redis"
    assert group["transitEncryptionEnabled"] is True
    assert group["atRestEncryptionEnabled"] is True
    assert secret_value(group["authToken"]) == token.outputs["result"]
    assert group["securityGroupIds"] == [group_ids(medium_run)["redis"]]
    assert group["numCacheClusters"] == 2
    assert group["automaticFailoverEnabled"] is True


def test_the_auth_token_and_api_keys_reach_the_task_only_as_secrets(
    medium_run: ProgramRun,
) -> None:
    secrets = {
        item["name"]: item["valueFrom"] for item in container(medium_run)["secrets"]
    }
    secret_arns = {
        s.name: s.outputs["arn"]
        for s in medium_run.of_type("aws:secretsmanager/secret:Secret")
    }
    environment = container_environment(medium_run)
    token = medium_run.one("aws:elasticache/replicationGroup:ReplicationGroup")

    assert secrets == {
        "LLM_ROUTER_API_KEYS": secret_arns["llmr-medium-router-api-keys"],
        "LLM_ROUTER_REDIS_AUTH_TOKEN": secret_arns["llmr-medium-cache-auth-token"],
    }
    assert secret_value(token.inputs["authToken"]) not in str(environment)
    assert environment["LLM_ROUTER_CACHE_BACKEND"] == "redis"
    assert environment["LLM_ROUTER_REDIS_URL"] == (
        f"rediss://{token.outputs['primaryEndpointAddress']}:6379/0"
    )
    assert environment["LLM_ROUTER_HOST"] == "0.0.0.0"
    assert environment["LLM_ROUTER_EMF_ENABLED"] == "true"


def test_the_service_scales_on_cpu_and_requests_per_target(
    medium_run: ProgramRun,
) -> None:
    target = medium_run.one("aws:appautoscaling/target:Target").inputs
    policies = {
        p.inputs["targetTrackingScalingPolicyConfiguration"][
            "predefinedMetricSpecification"
        ]["predefinedMetricType"]: p.inputs["targetTrackingScalingPolicyConfiguration"]
        for p in medium_run.of_type("aws:appautoscaling/policy:Policy")
    }
    balancer = medium_run.one("aws:lb/loadBalancer:LoadBalancer").outputs
    group = medium_run.one("aws:lb/targetGroup:TargetGroup").outputs

    assert (target["minCapacity"], target["maxCapacity"]) == (2, 6)
    assert policies["ECSServiceAverageCPUUtilization"]["targetValue"] == 60
    requests = policies["ALBRequestCountPerTarget"]
    assert requests["targetValue"] == 600
    assert requests["predefinedMetricSpecification"]["resourceLabel"] == (
        f"{balancer['arnSuffix']}/{group['arnSuffix']}"
    )


def test_bedrock_runtime_is_reached_through_an_interface_endpoint(
    medium_run: ProgramRun,
) -> None:
    endpoint = medium_run.one("aws:ec2/vpcEndpoint:VpcEndpoint").inputs

    assert endpoint["serviceName"] == "com.amazonaws.us-east-1.bedrock-runtime"
    assert endpoint["vpcEndpointType"] == "Interface"
    assert endpoint["privateDnsEnabled"] is True
    assert endpoint["subnetIds"] == ["subnet-private-a", "subnet-private-b"]


def test_tasks_run_on_arm64_fargate_with_health_on_readyz(
    medium_run: ProgramRun,
) -> None:
    task = medium_run.one("aws:ecs/taskDefinition:TaskDefinition").inputs
    group = medium_run.one("aws:lb/targetGroup:TargetGroup").inputs

    assert task["runtimePlatform"]["cpuArchitecture"] == "ARM64"
    assert task["requiresCompatibilities"] == ["FARGATE"]
    assert container(medium_run)["image"] == medium_run.outputs["imageRef"]
    assert group["healthCheck"]["path"] == "/readyz"
    assert group["port"] == 8080
