"""The EKS cluster: VPC, control plane, system node group, add-ons, provider.

Access is API-mode access entries only (no aws-auth ConfigMap). The API
endpoint is private unless `clusterPublicAccessCidrs` lists networks, and then
public only to them. Kubernetes secrets are envelope-encrypted with a KMS key
of the stack's own; every control-plane log type goes to a log group with the
kit's retention. Karpenter finds the private subnets and the cluster security
group by the `karpenter.sh/discovery` tag set here.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_awsx as awsx
import pulumi_kubernetes as k8s

from infra.iam import assume_role_policy
from infra.large.config import LargeConfig
from infra.large.identity import RoleSpec, ServiceAccountRef, declare_pod_role

with warnings.catch_warnings():
    # pulumi-eks warns on import about NodeGroup (launch configurations), a
    # class this stack does not use; the warning is not about our code.
    warnings.filterwarnings(
        "ignore", message="NodeGroup uses AWS EC2", category=DeprecationWarning
    )
    import pulumi_eks as eks

DISCOVERY_TAG = "karpenter.sh/discovery"
CONTROL_PLANE_LOGS = ("api", "audit", "authenticator", "controllerManager", "scheduler")
ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
NODE_POLICIES = (
    "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
    "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
)
EBS_CSI_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"
EFS_CSI_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonEFSCSIDriverPolicy"
METRICS_SERVER_REPO = "https://kubernetes-sigs.github.io/metrics-server/"
METRICS_SERVER_VERSION = "3.12.2"
# Label every node of the system group carries; controllers select it.
SYSTEM_LABEL = {"llm-router.dev/pool": "system"}


@dataclass(frozen=True)
class ClusterArgs:
    """The validated config the cluster is built from."""

    cluster_name: str
    large: LargeConfig
    vpc_cidr: str
    nat_gateways: str
    log_retention_days: int
    tags: Mapping[str, str]


class Cluster(pulumi.ComponentResource):
    """VPC, EKS (pulumi-eks v4), system nodes, add-ons and a Kubernetes provider."""

    cluster: eks.Cluster
    provider: k8s.Provider
    vpc_id: pulumi.Output[str]
    vpc_cidr: str
    private_subnet_ids: pulumi.Output[Sequence[str]]
    security_group_id: pulumi.Output[str]
    oidc_provider_arn: pulumi.Output[str]
    oidc_provider_url: pulumi.Output[str]
    ready: list[pulumi.Resource]

    def __init__(
        self,
        name: str,
        args: ClusterArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("llmrouter:index:Cluster", name, None, opts)
        self._name = name
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)
        self.vpc_cidr = args.vpc_cidr

        self._declare_network()
        self.cluster = self._declare_control_plane()
        self.security_group_id = self.cluster.cluster_security_group_id
        self.oidc_provider_arn = self.cluster.oidc_provider_arn
        self.oidc_provider_url = self.cluster.oidc_provider_url
        aws.ec2.Tag(
            f"{name}-sg-discovery",
            resource_id=self.security_group_id,
            key=DISCOVERY_TAG,
            value=args.cluster_name,
            opts=self._child,
        )
        system_nodes = self._declare_system_nodes()
        addons = self._declare_addons(system_nodes)
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.cluster.kubeconfig_json,
            enable_server_side_apply=True,
            opts=self._child,
        )
        storage_class = self._declare_default_storage_class()
        # Every HorizontalPodAutoscaler of the stack scales on CPU, which
        # the metrics server reports; EKS does not install one.
        metrics_server = k8s.helm.v4.Chart(
            f"{name}-metrics-server",
            chart="metrics-server",
            version=METRICS_SERVER_VERSION,
            repository_opts={"repo": METRICS_SERVER_REPO},
            namespace="kube-system",
            values={"replicas": 2, "nodeSelector": dict(SYSTEM_LABEL)},
            opts=pulumi.ResourceOptions(
                parent=self, provider=self.provider, depends_on=[system_nodes]
            ),
        )
        # What workloads need before they can schedule, mount and scale.
        self.ready = [system_nodes, *addons, storage_class, metrics_server]

        self.register_outputs({"clusterName": args.cluster_name, "vpcId": self.vpc_id})

    def _declare_network(self) -> None:
        args = self._args
        vpc = awsx.ec2.Vpc(
            f"{self._name}-vpc",
            cidr_block=args.vpc_cidr,
            number_of_availability_zones=2,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            nat_gateways={"strategy": awsx.ec2.NatGatewayStrategy(args.nat_gateways)},
            subnet_strategy=awsx.ec2.SubnetAllocationStrategy.AUTO,
            subnet_specs=[
                {
                    "type": awsx.ec2.SubnetType.PUBLIC,
                    "cidr_mask": 22,
                    # Where the load balancer controller puts internet-facing ALBs.
                    "tags": {**args.tags, "kubernetes.io/role/elb": "1"},
                },
                {
                    "type": awsx.ec2.SubnetType.PRIVATE,
                    "cidr_mask": 19,
                    "tags": {
                        **args.tags,
                        "kubernetes.io/role/internal-elb": "1",
                        DISCOVERY_TAG: args.cluster_name,
                    },
                },
            ],
            tags=dict(args.tags),
            opts=self._child,
        )
        self.vpc_id = vpc.vpc_id
        self.private_subnet_ids = vpc.private_subnet_ids
        self._public_subnet_ids = vpc.public_subnet_ids

    def _declare_control_plane(self) -> eks.Cluster:
        args, large = self._args, self._args.large
        key = aws.kms.Key(
            f"{self._name}-secrets-key",
            description=(
                f"Envelope encryption of Kubernetes secrets in {args.cluster_name}."
            ),
            enable_key_rotation=True,
            tags=dict(args.tags),
            opts=self._child,
        )
        # EKS creates this group on first log write, without retention;
        # declaring it first keeps the kit's retention.
        logs = aws.cloudwatch.LogGroup(
            f"{self._name}-control-plane-logs",
            name=f"/aws/eks/{args.cluster_name}/cluster",
            retention_in_days=args.log_retention_days,
            tags=dict(args.tags),
            opts=self._child,
        )
        admins: dict[str, eks.AccessEntryArgsDict] = {
            f"admin-{index}": {
                "principal_arn": arn,
                "access_policies": {
                    "admin": {
                        "policy_arn": ADMIN_POLICY,
                        "access_scope": {"type": "cluster"},
                    }
                },
            }
            for index, arn in enumerate(large.admin_arns)
        }
        public = bool(large.public_access_cidrs)
        return eks.Cluster(
            f"{self._name}-eks",
            name=args.cluster_name,
            version=large.kubernetes_version,
            vpc_id=self.vpc_id,
            private_subnet_ids=self.private_subnet_ids,
            public_subnet_ids=self._public_subnet_ids,
            node_associate_public_ip_address=False,
            authentication_mode=eks.AuthenticationMode.API,
            access_entries=admins,
            endpoint_private_access=True,
            endpoint_public_access=public,
            public_access_cidrs=list(large.public_access_cidrs) if public else None,
            encryption_config_key_arn=key.arn,
            enabled_cluster_log_types=list(CONTROL_PLANE_LOGS),
            # Nodes come from the managed group below and from Karpenter;
            # the EKS-created cluster security group is shared by both.
            skip_default_node_group=True,
            skip_default_security_groups=True,
            create_oidc_provider=True,
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[logs]),
        )

    def _declare_system_nodes(self) -> eks.ManagedNodeGroup:
        args, large = self._args, self._args.large
        role = aws.iam.Role(
            f"{self._name}-system-node-role",
            description=f"System nodes of {args.cluster_name}.",
            assume_role_policy=assume_role_policy("ec2.amazonaws.com"),
            tags=dict(args.tags),
            opts=self._child,
        )
        attachments = [
            aws.iam.RolePolicyAttachment(
                f"{self._name}-system-node-{arn.rsplit('/', 1)[-1]}",
                role=role.name,
                policy_arn=arn,
                opts=self._child,
            )
            for arn in NODE_POLICIES
        ]
        return eks.ManagedNodeGroup(
            f"{self._name}-system",
            cluster=self.cluster,
            node_role=role,
            capacity_type="ON_DEMAND",
            instance_types=list(large.system_instance_types),
            ami_type="AL2023_ARM_64_STANDARD",
            subnet_ids=self.private_subnet_ids,
            scaling_config={
                "min_size": large.system_nodes,
                "desired_size": large.system_nodes,
                "max_size": large.system_nodes + 1,
            },
            labels=dict(SYSTEM_LABEL),
            enable_imd_sv2=True,
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self, depends_on=attachments),
        )

    def _declare_addons(self, nodes: eks.ManagedNodeGroup) -> list[pulumi.Resource]:
        cluster_name, tags = self._args.cluster_name, self._args.tags
        after_nodes = pulumi.ResourceOptions(
            parent=self, depends_on=[self.cluster, nodes]
        )
        agent = aws.eks.Addon(
            f"{self._name}-pod-identity-agent",
            cluster_name=cluster_name,
            addon_name="eks-pod-identity-agent",
            resolve_conflicts_on_update="OVERWRITE",
            tags=dict(tags),
            opts=after_nodes,
        )
        addons: list[pulumi.Resource] = [agent]
        for addon, service_account, policy in (
            ("aws-ebs-csi-driver", "ebs-csi-controller-sa", EBS_CSI_POLICY),
            ("aws-efs-csi-driver", "efs-csi-controller-sa", EFS_CSI_POLICY),
        ):
            short = addon.removeprefix("aws-").removesuffix("-driver")
            role = declare_pod_role(
                f"{self._name}-{short}",
                RoleSpec(
                    account=ServiceAccountRef("kube-system", service_account),
                    managed_policy_arns=[policy],
                    tags=tags,
                ),
                cluster_name=cluster_name,
                parent=self,
                depends_on=[agent],
                bind=False,
            )
            addons.append(
                aws.eks.Addon(
                    f"{self._name}-{short}",
                    cluster_name=cluster_name,
                    addon_name=addon,
                    resolve_conflicts_on_update="OVERWRITE",
                    # The add-on creates the Pod Identity association itself.
                    pod_identity_associations=[
                        {"role_arn": role.arn, "service_account": service_account}
                    ],
                    tags=dict(tags),
                    opts=pulumi.ResourceOptions(
                        parent=self, depends_on=[self.cluster, nodes, agent]
                    ),
                )
            )
        return addons

    def _declare_default_storage_class(self) -> k8s.storage.v1.StorageClass:
        return k8s.storage.v1.StorageClass(
            f"{self._name}-gp3",
            metadata={
                "name": "gp3-encrypted",
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
            },
            provisioner="ebs.csi.aws.com",
            parameters={"type": "gp3", "encrypted": "true"},
            volume_binding_mode="WaitForFirstConsumer",
            allow_volume_expansion=True,
            reclaim_policy="Delete",
            opts=pulumi.ResourceOptions(parent=self, provider=self.provider),
        )
