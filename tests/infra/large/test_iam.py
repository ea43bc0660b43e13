"""Every IAM role of the large stack: who may assume it, and what it may do."""

from __future__ import annotations

import json
from typing import Any

from infra_support import as_list, policy_documents

from infra.large.karpenter_policy import controller_policy
from infra.mocking import ACCOUNT, MockedResource, ProgramRun
from infra.policy_pack.rules import check_no_wildcard_actions

READ_PREFIXES = ("Describe", "Get", "List")
# Roles that trust a service, not a pod: EC2 nodes.
NODE_ROLES = {"llmr-large-cluster-system-node-role", "llmr-large-karpenter-node-role"}


def roles(run: ProgramRun) -> dict[str, MockedResource]:
    """IAM roles by logical name."""
    return {r.name: r for r in run.of_type("aws:iam/role:Role")}


def trust(role: MockedResource) -> dict[str, Any]:
    """The role's parsed trust policy."""
    document: dict[str, Any] = json.loads(role.inputs["assumeRolePolicy"])
    return document


def test_no_policy_grants_a_wildcard_action(large_run: ProgramRun) -> None:
    documents = policy_documents(large_run)

    # Karpenter, the load balancer controller, the router, Triton, Fluent Bit.
    assert len(documents) == 5
    for resource, _ in documents:
        violations = check_no_wildcard_actions(resource.type, resource.inputs)
        assert violations == [], (resource.name, violations)


def test_statements_on_every_resource_only_read_or_are_conditioned(
    large_run: ProgramRun,
) -> None:
    for resource, document in policy_documents(large_run):
        for statement in document["Statement"]:
            if "*" not in as_list(statement["Resource"]):
                continue
            writes = [
                action
                for action in as_list(statement["Action"])
                if not action.split(":", 1)[1].startswith(READ_PREFIXES)
            ]
            assert not writes or statement.get("Condition"), (
                resource.name,
                statement["Sid"],
                writes,
            )


def test_pod_roles_are_bound_to_one_service_account_each(large_run: ProgramRun) -> None:
    by_name = roles(large_run)
    bindings = {
        b.inputs["roleArn"]: (b.inputs["namespace"], b.inputs["serviceAccount"])
        for b in large_run.of_type(
            "aws:eks/podIdentityAssociation:PodIdentityAssociation"
        )
    }
    addon_bindings = {
        association["roleArn"]: ("kube-system", association["serviceAccount"])
        for addon in large_run.of_type("aws:eks/addon:Addon")
        for association in addon.inputs.get("podIdentityAssociations", [])
    }
    bound = {**bindings, **addon_bindings}

    pod_identity = irsa = 0
    for name, role in by_name.items():
        [statement] = trust(role)["Statement"]
        principal = statement["Principal"]
        if name in NODE_ROLES:
            assert principal == {"Service": "ec2.amazonaws.com"}, name
        elif principal.get("Service") == "pods.eks.amazonaws.com":
            assert role.outputs["arn"] in bound, f"{name} has no Pod Identity binding"
            pod_identity += 1
        else:
            assert statement["Action"] == "sts:AssumeRoleWithWebIdentity", name
            conditions = statement["Condition"]["StringEquals"]
            [subject] = [v for k, v in conditions.items() if k.endswith(":sub")]
            assert subject.startswith("system:serviceaccount:"), name
            assert "*" not in subject, name
            irsa += 1
    # Karpenter, EBS CSI, EFS CSI, the load balancer controller and the
    # router use Pod Identity; Triton and Fluent Bit use IRSA.
    assert (pod_identity, irsa) == (5, 2)
    assert set(bindings.values()) == {
        ("kube-system", "karpenter"),
        ("kube-system", "aws-load-balancer-controller"),
        ("llm-router", "llm-router"),
    }


def test_triton_reads_only_its_bucket(large_run: ProgramRun) -> None:
    bucket = large_run.one("aws:s3/bucket:Bucket").outputs["arn"]
    [(_, document)] = [
        (r, d) for r, d in policy_documents(large_run) if "triton" in r.name
    ]

    grants = {
        action: as_list(statement["Resource"])
        for statement in document["Statement"]
        for action in as_list(statement["Action"])
    }
    assert grants == {
        "s3:ListBucket": [bucket],
        "s3:GetObject": [f"{bucket}/model_repository/*"],
    }


def test_the_router_reads_its_api_keys_and_nothing_else(large_run: ProgramRun) -> None:
    [secret] = [
        s.outputs["arn"]
        for s in large_run.of_type("aws:secretsmanager/secret:Secret")
        if s.name == "llmr-large-router-api-keys"
    ]
    [(_, document)] = [
        (r, d) for r, d in policy_documents(large_run) if "svc-pod" in r.name
    ]

    [statement] = document["Statement"]
    assert statement["Action"] == ["secretsmanager:GetSecretValue"]
    assert statement["Resource"] == [secret]


def test_fluent_bit_writes_only_the_router_log_group(large_run: ProgramRun) -> None:
    [(_, document)] = [
        (r, d) for r, d in policy_documents(large_run) if "fluent-bit" in r.name
    ]

    [statement] = document["Statement"]
    assert statement["Resource"] == [
        f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/llm-router/large/router:*"
    ]
    assert "logs:CreateLogGroup" not in statement["Action"]


def test_karpenter_writes_only_what_carries_its_cluster_tag() -> None:
    document = controller_policy(
        cluster_name="c1",
        region="us-east-1",
        account=ACCOUNT,
        partition="aws",
        queue_arn="arn:aws:sqs:us-east-1:123456789012:q",
        node_role_arn="arn:aws:iam::123456789012:role/node",
    )
    statements = {s["Sid"]: s for s in document["Statement"]}

    for sid in ("CreateOwnedInstances", "TagOnCreate", "DeleteOwned"):
        condition = json.dumps(statements[sid]["Condition"])
        assert "kubernetes.io/cluster/c1" in condition, sid
        assert "karpenter.sh/nodepool" in condition, sid
    assert statements["PassNodeRole"]["Resource"] == [
        "arn:aws:iam::123456789012:role/node"
    ]
    assert statements["ConsumeInterruptionQueue"]["Resource"] == [
        "arn:aws:sqs:us-east-1:123456789012:q"
    ]
    assert statements["ReadEc2InRegion"]["Condition"] == {
        "StringEquals": {"aws:RequestedRegion": "us-east-1"}
    }
    for statement in document["Statement"]:
        for action in statement["Action"]:
            assert "*" not in action, (statement["Sid"], action)


def test_the_deployed_karpenter_policy_is_the_scoped_document(
    large_run: ProgramRun,
) -> None:
    [(_, document)] = [
        (r, d)
        for r, d in policy_documents(large_run)
        if "karpenter-controller" in r.name
    ]
    node_role = roles(large_run)["llmr-large-karpenter-node-role"].outputs["arn"]
    queue = large_run.one("aws:sqs/queue:Queue").outputs["arn"]

    assert document == controller_policy(
        cluster_name="llmr-large",
        region="us-east-1",
        account=ACCOUNT,
        partition="aws",
        queue_arn=queue,
        node_role_arn=node_role,
    )


def test_managed_policies_are_only_the_node_and_csi_driver_ones(
    large_run: ProgramRun,
) -> None:
    attached = {
        r.inputs["policyArn"].rsplit("/", 1)[-1]
        for r in large_run.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    }

    assert attached == {
        "AmazonEKSWorkerNodePolicy",
        "AmazonEKS_CNI_Policy",
        "AmazonEC2ContainerRegistryReadOnly",
        "AmazonSSMManagedInstanceCore",
        "AmazonEBSCSIDriverPolicy",
        "AmazonEFSCSIDriverPolicy",
    }
