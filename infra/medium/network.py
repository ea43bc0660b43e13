"""The medium stack's network: a VPC, the security groups, a Bedrock endpoint.

Traffic is allowed along one path only: clients -> ALB (80, 443) -> tasks
(8080) -> Redis (6379), and tasks -> AWS APIs (443). Each group admits its one
upstream group and nothing else; Bedrock calls stay inside the VPC through an
interface endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_awsx as awsx

from infra.components.router_wiring import ROUTER_PORT

REDIS_PORT = 6379
HTTPS_PORT = 443
HTTP_PORT = 80
ANYWHERE = "0.0.0.0/0"


@dataclass(frozen=True)
class NetworkArgs:
    """CIDRs, NAT strategy and tags of the stack's network."""

    vpc_cidr: str
    nat_gateways: str
    ingress_cidrs: Sequence[str]
    region: str
    tags: Mapping[str, str]


class Network(pulumi.ComponentResource):
    """VPC with public and private subnets, four security groups, one endpoint."""

    vpc_id: pulumi.Output[str]
    public_subnet_ids: pulumi.Output[Sequence[str]]
    private_subnet_ids: pulumi.Output[Sequence[str]]
    alb_group: aws.ec2.SecurityGroup
    task_group: aws.ec2.SecurityGroup
    redis_group: aws.ec2.SecurityGroup

    def __init__(
        self,
        name: str,
        args: NetworkArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("llmrouter:index:Network", name, None, opts)
        self._name = name
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)

        vpc = awsx.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.vpc_cidr,
            number_of_availability_zones=2,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            nat_gateways={"strategy": awsx.ec2.NatGatewayStrategy(args.nat_gateways)},
            subnet_strategy=awsx.ec2.SubnetAllocationStrategy.AUTO,
            subnet_specs=[
                {"type": awsx.ec2.SubnetType.PUBLIC, "cidr_mask": 22},
                {"type": awsx.ec2.SubnetType.PRIVATE, "cidr_mask": 20},
            ],
            tags=dict(args.tags),
            opts=self._child,
        )
        self.vpc_id = vpc.vpc_id
        self.public_subnet_ids = vpc.public_subnet_ids
        self.private_subnet_ids = vpc.private_subnet_ids

        self.alb_group = self._declare_group("alb", "The router's load balancer.")
        self.task_group = self._declare_group("tasks", "The router's Fargate tasks.")
        self.redis_group = self._declare_group("redis", "The decision cache.")
        endpoint_group = self._declare_group("endpoints", "Interface VPC endpoints.")
        self._declare_rules(endpoint_group)
        self._declare_bedrock_endpoint(endpoint_group)

        self.register_outputs(
            {"vpcId": self.vpc_id, "privateSubnetIds": self.private_subnet_ids}
        )

    def _declare_group(self, role: str, description: str) -> aws.ec2.SecurityGroup:
        return aws.ec2.SecurityGroup(
            f"{self._name}-{role}",
            description=description,
            vpc_id=self.vpc_id,
            tags={**self._args.tags, "Name": f"{self._name}-{role}"},
            opts=self._child,
        )

    def _declare_rules(self, endpoints: aws.ec2.SecurityGroup) -> None:
        for index, cidr in enumerate(self._args.ingress_cidrs):
            for port in (HTTPS_PORT, HTTP_PORT):
                self._ingress(f"alb-{port}-{index}", self.alb_group, port, cidr=cidr)
        self._egress("alb-to-tasks", self.alb_group, ROUTER_PORT, peer=self.task_group)

        self._ingress(
            "tasks-from-alb", self.task_group, ROUTER_PORT, peer=self.alb_group
        )
        # Tasks call AWS APIs (Bedrock, ECR, Secrets Manager, Logs) over HTTPS.
        self._egress("tasks-https", self.task_group, HTTPS_PORT, cidr=ANYWHERE)
        self._egress(
            "tasks-to-redis", self.task_group, REDIS_PORT, peer=self.redis_group
        )

        self._ingress(
            "redis-from-tasks", self.redis_group, REDIS_PORT, peer=self.task_group
        )
        self._ingress(
            "endpoints-from-tasks", endpoints, HTTPS_PORT, peer=self.task_group
        )

    def _ingress(
        self,
        suffix: str,
        group: aws.ec2.SecurityGroup,
        port: int,
        *,
        peer: aws.ec2.SecurityGroup | None = None,
        cidr: str | None = None,
    ) -> None:
        self._declare_rule(
            aws.vpc.SecurityGroupIngressRule, suffix, group, port, peer, cidr
        )

    def _egress(
        self,
        suffix: str,
        group: aws.ec2.SecurityGroup,
        port: int,
        *,
        peer: aws.ec2.SecurityGroup | None = None,
        cidr: str | None = None,
    ) -> None:
        self._declare_rule(
            aws.vpc.SecurityGroupEgressRule, suffix, group, port, peer, cidr
        )

    def _declare_rule(
        self,
        rule_type: type[aws.vpc.SecurityGroupIngressRule]
        | type[aws.vpc.SecurityGroupEgressRule],
        suffix: str,
        group: aws.ec2.SecurityGroup,
        port: int,
        peer: aws.ec2.SecurityGroup | None,
        cidr: str | None,
    ) -> None:
        # Ingress and egress rules take the same inputs: one TCP port, and a
        # peer group or a CIDR on the other side.
        rule_type(
            f"{self._name}-{suffix}",
            security_group_id=group.id,
            ip_protocol="tcp",
            from_port=port,
            to_port=port,
            referenced_security_group_id=peer.id if peer else None,
            cidr_ipv4=cidr,
            tags=dict(self._args.tags),
            opts=self._child,
        )

    def _declare_bedrock_endpoint(self, group: aws.ec2.SecurityGroup) -> None:
        aws.ec2.VpcEndpoint(
            f"{self._name}-bedrock-runtime",
            vpc_id=self.vpc_id,
            service_name=f"com.amazonaws.{self._args.region}.bedrock-runtime",
            vpc_endpoint_type="Interface",
            private_dns_enabled=True,
            subnet_ids=self.private_subnet_ids,
            security_group_ids=[group.id],
            tags=dict(self._args.tags),
            opts=self._child,
        )
