"""The EKS cluster's inputs: access, endpoint, encryption, logs, nodes, add-ons."""

from __future__ import annotations

from infra.mocking import ProgramRun, is_taggable


def test_the_cluster_uses_access_entries_and_a_limited_endpoint(
    large_run: ProgramRun,
) -> None:
    cluster = large_run.one("eks:index:Cluster").inputs

    assert cluster["name"] == "llmr-large"
    assert cluster["authenticationMode"] == "API"
    assert cluster["endpointPrivateAccess"] is True
    assert cluster["publicAccessCidrs"] == ["203.0.113.0/24"]
    assert cluster["skipDefaultNodeGroup"] is True
    assert cluster["createOidcProvider"] is True
    assert cluster["nodeAssociatePublicIpAddress"] is False


def test_secrets_are_encrypted_with_the_stacks_own_rotating_key(
    large_run: ProgramRun,
) -> None:
    cluster = large_run.one("eks:index:Cluster").inputs
    [key] = [k for k in large_run.of_type("aws:kms/key:Key") if "secrets-key" in k.name]

    assert cluster["encryptionConfigKeyArn"] == key.outputs["arn"]
    assert key.inputs["enableKeyRotation"] is True


def test_every_control_plane_log_type_goes_to_a_retained_group(
    large_run: ProgramRun,
) -> None:
    cluster = large_run.one("eks:index:Cluster")
    [group] = [
        g
        for g in large_run.of_type("aws:cloudwatch/logGroup:LogGroup")
        if g.inputs["name"] == "/aws/eks/llmr-large/cluster"
    ]

    assert set(cluster.inputs["enabledClusterLogTypes"]) == {
        "api",
        "audit",
        "authenticator",
        "controllerManager",
        "scheduler",
    }
    assert group.inputs["retentionInDays"] == 30
    assert group.urn in cluster.dependencies


def test_a_small_on_demand_system_group_runs_the_controllers(
    large_run: ProgramRun,
) -> None:
    group = large_run.one("eks:index:ManagedNodeGroup").inputs

    assert group["capacityType"] == "ON_DEMAND"
    assert group["instanceTypes"] == ["m7g.large"]
    assert group["scalingConfig"] == {"minSize": 2, "desiredSize": 2, "maxSize": 3}
    assert group["labels"] == {"llm-router.dev/pool": "system"}


def test_add_ons_include_pod_identity_and_the_csi_drivers_with_their_roles(
    large_run: ProgramRun,
) -> None:
    addons = {
        a.inputs["addonName"]: a for a in large_run.of_type("aws:eks/addon:Addon")
    }

    assert set(addons) == {
        "eks-pod-identity-agent",
        "aws-ebs-csi-driver",
        "aws-efs-csi-driver",
    }
    [ebs] = addons["aws-ebs-csi-driver"].inputs["podIdentityAssociations"]
    assert ebs["serviceAccount"] == "ebs-csi-controller-sa"
    assert ebs["roleArn"].startswith("arn:aws:iam::")
    agent = addons["eks-pod-identity-agent"].urn
    assert agent in addons["aws-ebs-csi-driver"].dependencies


def test_model_caches_live_on_encrypted_efs_reachable_from_the_vpc_only(
    large_run: ProgramRun,
) -> None:
    efs = large_run.one("aws:efs/fileSystem:FileSystem")
    [rule] = [
        r.inputs
        for r in large_run.of_type(
            "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
        )
        if "nfs" in r.name
    ]
    storage_classes = {
        s.inputs["metadata"]["name"]: s.inputs
        for s in large_run.of_type("kubernetes:storage.k8s.io/v1:StorageClass")
    }

    assert efs.inputs["encrypted"] is True
    assert len(large_run.of_type("aws:efs/mountTarget:MountTarget")) == 2
    assert (rule["fromPort"], rule["cidrIpv4"]) == (2049, "10.30.0.0/16")
    assert storage_classes["efs-models"]["provisioner"] == "efs.csi.aws.com"
    assert storage_classes["gp3-encrypted"]["parameters"] == {
        "type": "gp3",
        "encrypted": "true",
    }


def test_every_taggable_aws_resource_carries_the_kit_tags(
    large_run: ProgramRun,
) -> None:
    required = {"Project", "Stack", "ManagedBy", "CostCenter"}
    checked = 0
    for resource in large_run.resources:
        if not resource.custom or not is_taggable(resource.type):
            continue
        tags = resource.inputs.get("tags") or {}
        assert required <= set(tags), (resource.type, resource.name)
        checked += 1
    assert checked > 30
