"""Shared model storage: an encrypted EFS file system and its StorageClass.

A NIMCache downloads a tier's weights once; every replica of that tier then
mounts them. Replicas land on different Spot nodes, so the volume must be
ReadWriteMany: EBS cannot be, EFS can. Mount targets sit in the private
subnets and admit NFS from the VPC only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

NFS_PORT = 2049
STORAGE_CLASS = "efs-models"
# The VPC spans two availability zones (see cluster.py).
ZONES = 2


@dataclass(frozen=True)
class ModelStorageArgs:
    """Network placement and the cluster to register the StorageClass in."""

    vpc_id: pulumi.Input[str]
    vpc_cidr: str
    private_subnet_ids: pulumi.Output[Sequence[str]]
    provider: k8s.Provider
    ready: Sequence[pulumi.Resource]
    tags: Mapping[str, str]


class ModelStorage(pulumi.ComponentResource):
    """EFS file system, mount targets, and a dynamic-provisioning StorageClass."""

    file_system: aws.efs.FileSystem
    storage_class: k8s.storage.v1.StorageClass

    def __init__(
        self,
        name: str,
        args: ModelStorageArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("llmrouter:index:ModelStorage", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        self.file_system = aws.efs.FileSystem(
            f"{name}-efs",
            encrypted=True,
            performance_mode="generalPurpose",
            # Weights are read at start-up in bursts; elastic throughput
            # serves them without paying for provisioned throughput.
            throughput_mode="elastic",
            tags={**args.tags, "Name": f"{name}-models"},
            opts=child,
        )
        group = aws.ec2.SecurityGroup(
            f"{name}-nfs",
            description="NFS to the model cache, from the VPC only.",
            vpc_id=args.vpc_id,
            tags={**args.tags, "Name": f"{name}-nfs"},
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-nfs-from-vpc",
            security_group_id=group.id,
            ip_protocol="tcp",
            from_port=NFS_PORT,
            to_port=NFS_PORT,
            cidr_ipv4=args.vpc_cidr,
            tags=dict(args.tags),
            opts=child,
        )
        targets = [
            aws.efs.MountTarget(
                f"{name}-target-{zone}",
                file_system_id=self.file_system.id,
                subnet_id=args.private_subnet_ids.apply(_nth(zone)),
                security_groups=[group.id],
                opts=child,
            )
            for zone in range(ZONES)
        ]
        self.storage_class = k8s.storage.v1.StorageClass(
            f"{name}-class",
            metadata={"name": STORAGE_CLASS},
            provisioner="efs.csi.aws.com",
            parameters={
                "provisioningMode": "efs-ap",
                "fileSystemId": self.file_system.id,
                "directoryPerms": "700",
            },
            reclaim_policy="Delete",
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=args.provider,
                depends_on=[*args.ready, *targets],
            ),
        )

        self.register_outputs({"fileSystemId": self.file_system.id})


def _nth(index: int) -> Callable[[Sequence[str]], str]:
    def pick(ids: Sequence[str]) -> str:
        return ids[index]

    return pick
